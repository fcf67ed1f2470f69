// The run-time configuration served by services/web at /config.json: where the gateway is.
export interface ClientConfig {
  /** The gateway's base URL without a trailing slash; "" means this page's own origin. */
  apiUrl: string;
}

export async function loadConfig(fetchImpl: typeof fetch = (...a) => fetch(...a)): Promise<ClientConfig> {
  let res: Response;
  try {
    res = await fetchImpl("/config.json", { cache: "no-store" });
  } catch {
    throw new Error("The app's configuration could not be loaded: the server is unreachable.");
  }
  if (!res.ok) throw new Error(`The app's configuration could not be loaded (HTTP ${res.status}).`);
  const raw = (await res.json()) as { apiUrl?: unknown };
  const apiUrl = typeof raw.apiUrl === "string" ? raw.apiUrl.trim().replace(/\/+$/, "") : "";
  if (apiUrl && !/^https?:\/\/[^/?#\s]+$/.test(apiUrl)) {
    throw new Error(`The app's configuration names an invalid server address: ${apiUrl}`);
  }
  return { apiUrl };
}
