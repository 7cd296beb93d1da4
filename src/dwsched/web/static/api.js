// The console's only way to the server: JSON calls of the RPC API's actions, as the
// signed-in user (POST /console/api/call), with the session's CSRF token.
let csrf = null;
let user = null;

export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message || code);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

async function post(path, body, withToken = true) {
  const headers = { "Content-Type": "application/json" };
  if (withToken && csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  return answer(response);
}

async function answer(response) {
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = { Code: "BadResponse", Message: `The server answered ${response.status}.` };
  }
  if (!response.ok) {
    if (response.status === 401 && data.Code === "NotSignedIn") toSignIn();
    throw new ApiError(response.status, data.Code, data.Message, data.RequestId);
  }
  return data;
}

function toSignIn() {
  if (location.pathname === "/console/signin") return;
  const next = location.pathname + location.search;
  location.assign(`/console/signin?next=${encodeURIComponent(next)}`);
}

export async function session() {
  const response = await fetch("/console/api/session", { credentials: "same-origin" });
  if (response.status === 401) return null;
  const data = await answer(response);
  csrf = data.CsrfToken;
  user = data.UserName;
  return data;
}

export async function signIn(userName, password) {
  const data = await post("/console/api/signin", { UserName: userName, Password: password }, false);
  csrf = data.CsrfToken;
  user = data.UserName;
  return data;
}

export async function signOut() {
  await post("/console/api/signout", {});
  csrf = null;
  user = null;
}

export function currentUser() {
  return user;
}

// call("ListWorkflowInstances", {ProjectId: 1, BizDate: ms, ...}) -> the action's JSON.
// Arrays and objects are sent as they are; the server turns them into the RPC's JSON text.
export function call(action, parameters = {}) {
  const clean = {};
  for (const [k, v] of Object.entries(parameters)) {
    if (v !== undefined && v !== null && v !== "") clean[k] = v;
  }
  return post("/console/api/call", { Action: action, Parameters: clean });
}
