// Where the backend is. A deployed stack: ./config.json, written from its outputs by
// scripts/web_config.py. The local stack: /wsstack.json, which `wsstack up --site` serves.
// Both use the local stack's state-file names (websocket_url, region, user_pool_id, ...).

const SOURCES = [
  ["./config.json", false],
  ["/wsstack.json", true],
];

export async function loadConfig() {
  for (const [url, local] of SOURCES) {
    let data;
    try {
      const response = await fetch(url, { cache: "no-store" });
      if (!response.ok) continue;
      data = await response.json();
    } catch {
      continue;
    }
    const config = normalize(data, local);
    if (config) return config;
  }
  throw new Error(
    "No configuration found: run the local stack (make up), or write config.json for a deployed stack " +
      "(scripts/web_config.py).",
  );
}

function normalize(data, local) {
  if (!data || !data.websocket_url || !data.region || !data.user_pool_client_id) return null;
  return {
    websocketUrl: data.websocket_url,
    region: data.region,
    userPoolId: data.user_pool_id,
    clientId: data.user_pool_client_id,
    // The local stack's emulator answers Cognito's API; on AWS it is the regional endpoint.
    cognitoEndpoint: data.aws_endpoint || `https://cognito-idp.${data.region}.amazonaws.com/`,
    local: local || Boolean(data.aws_endpoint),
  };
}
