/**
 * Test-only `--import` hook: appends the URL of every module the process resolves to the file named
 * by OUTPOST_TEST_MODULE_LOG, so a test can see what an agent loaded. Nothing in the product reads
 * that variable; the hook exists only when a test passes it on the node command line.
 */
import { register } from 'node:module';

if (process.env.OUTPOST_TEST_MODULE_LOG) {
  register('./module-log-hooks.mjs', import.meta.url, { data: { file: process.env.OUTPOST_TEST_MODULE_LOG } });
}
