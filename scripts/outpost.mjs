#!/usr/bin/env node
// The `outpost` command: registers tsx so the TypeScript sources run as they are, with no build step.
import { register } from 'tsx/esm/api';

register();
await import('./outpost.ts');
