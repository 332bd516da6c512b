/**
 * The plugin test harness: `testPlugin({ plugin, config })` runs a plugin's halves on the real runner
 * in one process (fake clock, in-memory link, inject() for routes) and captures what it does.
 * For tests only: it is the one part of plugins/sdk that imports the runtime.
 */
export { HARNESS_CONTROLLER, testPlugin, type CapturedCommand, type CapturedEvent, type CapturedReport, type CapturedWebhook, type LogLine, type PluginHarness, type TestPluginOptions } from './harness.ts';
export { ADMIN_TOKEN, type InjectRequest, type InjectResponse } from './inject.ts';
export type { CapturedMessage } from './link.ts';
export { realSleep, until, type Clock } from './clock.ts';
export { unixHttpServer, type UnixHttpServer } from './unix-http.ts';
