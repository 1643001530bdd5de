// What a Node worker runs: `node node_bootstrap.mjs <the client's dist/index.mjs> [lifeline fd]`.
// Like Lambda's /var/runtime/index.mjs it imports the runtime interface client and runs the
// handler named by _HANDLER in LAMBDA_TASK_ROOT; before that it sets up three things the local
// stack needs (see wsstack.node).
import * as nodeModule from "node:module";
import { Socket } from "node:net";
import tls from "node:tls";
import { pathToFileURL } from "node:url";

const [clientEntry, lifeline] = process.argv.slice(2);

// 1. ES modules find the packages of NODE_PATH (the SDK beside the client), as require() does.
nodeModule.register?.(new URL("./node_resolve.mjs", import.meta.url), {
  data: { folders: (process.env.NODE_PATH || "").split(":").filter(Boolean) },
});

// 2. The stack's lifeline (see wsstack.lifeline): at its end of file the stack is gone, however
// it ended, and the worker ends with what its handler started, even mid-invocation. Without it
// a worker would retry its dead Runtime API forever, using a third of a CPU.
if (lifeline) {
  const end = () => {
    try {
      process.kill(-process.pid, "SIGKILL"); // its process group: the handler's children too
    } finally {
      process.kill(process.pid, "SIGKILL");
    }
  };
  new Socket({ fd: Number(lifeline), readable: true, writable: false })
    .on("end", end).on("error", end).resume().unref();
}

// 3. The template's API hosts, however the function's code names them: Node ignores
// HTTPS_PROXY, so TLS connections to those hosts on port 443 go to the egress proxy's direct
// entrance (WSSTACK_EGRESS_TLS, host:port), which answers with the stack's certificate for the
// host asked for. https.Agent (and so the AWS SDK) and fetch both connect with tls.connect(options).
const home = process.env.WSSTACK_EGRESS_TLS;
if (home) {
  const at = home.lastIndexOf(":");
  const hosts = new Set((process.env.WSSTACK_EGRESS_HOSTS || "").split(","));
  const connect = tls.connect;
  tls.connect = function (options, ...rest) {
    const host = options !== null && typeof options === "object" ? String(options.host || "").toLowerCase() : "";
    if (hosts.has(host) && Number(options.port || 443) === 443) {
      options = { ...options, host: home.slice(0, at), port: Number(home.slice(at + 1)),
                  servername: options.servername || host };
    }
    return connect.call(this, options, ...rest);
  };
}

const { run } = await import(pathToFileURL(clientEntry).href);
await run(process.env.LAMBDA_TASK_ROOT, process.env._HANDLER);
