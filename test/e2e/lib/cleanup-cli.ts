/** `node --import tsx test/e2e/lib/cleanup-cli.ts`: removes e2e networks whose owning test process is gone. */
import { cleanupStale } from './netns.ts';

const removed = await cleanupStale();
if (removed > 0) process.stdout.write(`removed ${removed} leftover e2e network(s)\n`);
