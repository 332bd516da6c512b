/** The Outpost side of the comet bench: the gateway with its WebSocket listener, defaults from the plugin config. */
import { createLog } from '../../../plugins/sdk/log.ts';
import { cometConfig, gatewayOptions } from '../../../plugins/comet/config.ts';
import { Gateway } from '../../../plugins/comet/gateway/gateway.ts';
import { listenWebSocket } from '../../../plugins/comet/listeners/ws.ts';
import { benchBody, OPERATION, ROOM, serveBench } from './comet-bench-ipc.ts';

const config = cometConfig.parse(JSON.parse(process.env.COMET_BENCH_CONFIG ?? '{}'));
const gateway = new Gateway(gatewayOptions(config), createLog('comet-bench', 'warn'));
const ws = await listenWebSocket({ host: '127.0.0.1', port: 0 }, gateway);
serveBench(ws.port, () => gateway.pushRoom(ROOM, OPERATION, benchBody()), () => gateway.stats.dropped);
