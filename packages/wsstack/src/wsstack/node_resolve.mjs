// A module resolution hook (module.register) for Node workers: an ES module's bare import that
// its own folders do not have is looked for in NODE_PATH's folders, as Lambda's Node runtimes
// resolve the AWS SDK they ship (`import ... from "@aws-sdk/client-dynamodb"` in an .mjs
// handler). Node itself applies NODE_PATH to require() only.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

let folders = [];

export function initialize(data) {
  folders = data.folders;
}

// Relative, absolute and URL specifiers ("./x", "/x", "node:x", "file:x") are not packages.
const NOT_A_PACKAGE = /^[./]|^[a-z][a-z0-9+.-]*:/i;

export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    if (error?.code !== "ERR_MODULE_NOT_FOUND" || NOT_A_PACKAGE.test(specifier)) throw error;
    for (const folder of folders) {
      try {
        // As if imported from a module inside that node_modules folder.
        return await next(specifier, { ...context, parentURL: pathToFileURL(join(folder, "index.mjs")).href });
      } catch {
        // not there either: the next folder
      }
    }
    throw error;
  }
}
