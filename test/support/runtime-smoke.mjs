// A peerlb/sdk/core client for other runtimes (Deno, Bun), run by test/integration/runtimes/:
// `<runtime> runtime-smoke.mjs <core entry URL> <agent ws URL>` imports the runtime-neutral core
// (dist/sdk/core/index.js), joins through the agent's /v1/watch over the runtime's own WebSocket,
// prints `{"picked":{…}}`, then one `{"load":{…}}` line per change of the picked server's load, and
// closes the cluster and exits after 20 s (the test ends it sooner, by PID).
const [entry, agent] = (globalThis.Deno ? Deno.args : process.argv.slice(2));
const { join } = await import(entry);
const cluster = await join({ service: 'game', discovery: { agents: [agent] }, waitForServersMs: 10_000 });
const s = cluster.pick();
console.log(JSON.stringify({ picked: s ? { id: s.id, host: s.host, tcpPort: s.tcpPort } : null, runtime: globalThis.Deno ? 'deno' : globalThis.Bun ? 'bun' : 'other' }));
cluster.on('change', (view) => {
  const me = view.find((x) => x.id === s?.id);
  if (me?.load) console.log(JSON.stringify({ load: { utilization: me.load.utilization, sessions: me.load.sessions } }));
});
setTimeout(async () => {
  await cluster.close();
  console.log(JSON.stringify({ closed: true }));
}, 20_000);
