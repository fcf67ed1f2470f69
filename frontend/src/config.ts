// The run-time configuration served by services/web at /config.json: where the gateway is.
export interface ClientConfig {
  /** The gateway's base URL without a trailing slash; "" means this page's own origin. */
  apiUrl: string;
  /** STUN/TURN servers for calls (RTCPeerConnection's `iceServers`); none on a LAN. */
  iceServers: RTCIceServer[];
}

function iceServers(raw: unknown): RTCIceServer[] {
  if (!Array.isArray(raw)) return [];
  const str = (v: unknown): v is string => typeof v === "string";
  return raw.flatMap((e) => {
    const urls = Array.isArray(e?.urls) ? e.urls.filter(str) : str(e?.urls) ? [e.urls] : [];
    if (urls.length === 0) return [];
    const server: RTCIceServer = { urls };
    if (str(e.username) && str(e.credential)) Object.assign(server, { username: e.username, credential: e.credential });
    return [server];
  });
}

export async function loadConfig(fetchImpl: typeof fetch = (...a) => fetch(...a)): Promise<ClientConfig> {
  let res: Response;
  try {
    res = await fetchImpl("/config.json", { cache: "no-store" });
  } catch {
    throw new Error("The app's configuration could not be loaded: the server is unreachable.");
  }
  if (!res.ok) throw new Error(`The app's configuration could not be loaded (HTTP ${res.status}).`);
  const raw = (await res.json()) as { apiUrl?: unknown; iceServers?: unknown };
  const apiUrl = typeof raw.apiUrl === "string" ? raw.apiUrl.trim().replace(/\/+$/, "") : "";
  if (apiUrl && !/^https?:\/\/[^/?#\s]+$/.test(apiUrl)) {
    throw new Error(`The app's configuration names an invalid server address: ${apiUrl}`);
  }
  return { apiUrl, iceServers: iceServers(raw.iceServers) };
}
