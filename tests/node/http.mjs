// HTTP helpers shared by the test files (through support.mjs) and by drops.mjs, which also
// runs outside the test runner (scripts/bench-drops.sh) and so cannot import support.mjs
// (its `after` hook belongs to node:test).

// A JSON request to `base`, signed in when `token` is given, with any extra `headers`;
// `{ status, body }` (null body when empty).
export async function request(base, method, path, token, body, extra = {}) {
  const headers = { ...extra };
  if (body) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
