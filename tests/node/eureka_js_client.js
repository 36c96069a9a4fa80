// A real eureka-js-client 4.5.0 driven by an end-to-end test (tests/tests/eureka_js.rs).
//
// The client is used unmodified, through its documented options only: a `logger` that reports the
// client's own warnings, and `requestMiddleware` (the documented request hook) that reports each
// request it makes. Commands arrive on stdin, one JSON object per line; observations go to stdout
// as JSON lines:
//
//   {"event":"registered"} {"event":"heartbeat"} {"event":"registryUpdated"} {"event":"deregistered"}
//   {"event":"started", "instanceId": ...}          after start(): registered and fetched
//   {"event":"request", "method":..., "uri":...}    every request the client is about to send
//   {"event":"log", "level":"warn"|"error", "msg":...}
//   {"event":"cache", "apps":{APP:[...]}, "vips":{vip:[...]}}  reply to {"cmd":"cache"}
//   {"event":"stopped", "error":null|...}           reply to {"cmd":"stop"}, then exit 0
//
// Usage: node eureka_js_client.js '<json options>'
//   {"host":"127.0.0.1","port":N,"servicePath":"/eureka/apps/"|null,"app":"js-legacy-svc",
//    "instancePort":8090,"instanceId":null|"...","intervalMs":1000,"useDelta":false}

'use strict';

const readline = require('readline');
const { Eureka } = require('eureka-js-client');

const opts = JSON.parse(process.argv[2]);

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function text(args) {
  return args
    .map((a) => (a instanceof Error ? a.message : typeof a === 'string' ? a : JSON.stringify(a)))
    .join(' ');
}

const logger = {
  level() {
    return 30;
  },
  debug() {},
  info() {},
  warn(...args) {
    emit({ event: 'log', level: 'warn', msg: text(args) });
  },
  error(...args) {
    emit({ event: 'log', level: 'error', msg: text(args) });
  },
};

const instance = {
  app: opts.app,
  hostName: '127.0.0.1',
  ipAddr: '127.0.0.1',
  statusPageUrl: `http://127.0.0.1:${opts.instancePort}/info`,
  port: { $: opts.instancePort, '@enabled': 'true' },
  vipAddress: opts.app,
  dataCenterInfo: {
    '@class': 'com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo',
    name: 'MyOwn',
  },
};
if (opts.instanceId) {
  instance.instanceId = opts.instanceId;
}

const eureka = {
  host: opts.host,
  port: opts.port,
  heartbeatInterval: opts.intervalMs,
  registryFetchInterval: opts.intervalMs,
  maxRetries: 1,
  requestRetryDelay: 100,
};
if (opts.servicePath) {
  eureka.servicePath = opts.servicePath;
}

const client = new Eureka({
  instance,
  eureka,
  logger,
  shouldUseDelta: Boolean(opts.useDelta),
  requestMiddleware(requestOpts, done) {
    emit({
      event: 'request',
      method: (requestOpts.method || 'GET').toUpperCase(),
      uri: requestOpts.baseUrl + requestOpts.uri,
    });
    done(requestOpts);
  },
});

for (const name of ['registered', 'heartbeat', 'registryUpdated', 'deregistered']) {
  client.on(name, () => emit({ event: name }));
}

function describe(cache) {
  const pick = (i) => ({
    instanceId: i.instanceId || null,
    app: i.app,
    hostName: i.hostName,
    status: i.status,
    vipAddress: i.vipAddress,
    port: i.port && typeof i.port === 'object' ? i.port.$ : i.port,
  });
  const out = {};
  for (const key of Object.keys(cache)) {
    out[key] = cache[key].map(pick);
  }
  return out;
}

client.start((err) => {
  if (err) {
    emit({ event: 'start-failed', error: String(err && err.message ? err.message : err) });
    return;
  }
  emit({ event: 'started', instanceId: client.instanceId });
});

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  if (cmd.cmd === 'cache') {
    emit({ event: 'cache', apps: describe(client.cache.app), vips: describe(client.cache.vip) });
  } else if (cmd.cmd === 'stop') {
    client.stop((error) => {
      emit({ event: 'stopped', error: error ? String(error.message || error) : null });
      process.exit(0);
    });
  } else {
    emit({ event: 'bad-command', cmd });
  }
});
rl.on('close', () => process.exit(0));
