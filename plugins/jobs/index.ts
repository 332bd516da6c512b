import { definePlugin } from '../sdk/index.ts';
import { spec } from './spec.ts';

export default definePlugin(spec, { agent: () => import('./agent.ts'), controller: () => import('./controller.ts') });
