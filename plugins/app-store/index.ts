import { definePlugin } from '../sdk/index.ts';
import { appStoreConfig } from './schema.ts';
import { appStoreAgent } from './agent.ts';
import { appStoreController } from './controller.ts';

export default definePlugin({
  name: 'app-store',
  config: appStoreConfig,
  agent: appStoreAgent,
  controller: appStoreController,
  events: ['app.installed', 'app.failed', 'app.uninstalled'],
});
