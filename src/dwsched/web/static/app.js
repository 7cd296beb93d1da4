// The console's shell: sign-in, the workspace picker, and the router that draws the page
// the address names. Pages live in pages/*.js and export
//   render(main, ctx) -> optional cleanup function (stop timers)
// with ctx = {project, projects, params, navigate, refresh}.
import { call, session, signIn, signOut, currentUser } from "./api.js";
import { h, clear, errorBox, query } from "./util.js";

const ROUTES = [
  [/^\/console\/overview$/, "overview"],
  [/^\/console\/instances$/, "instances"],
  [/^\/console\/instances\/(\d+)$/, "instance"],
  [/^\/console\/workflows$/, "workflows"],
  [/^\/console\/workers$/, "workers"],
  [/^\/console\/alerts$/, "alerts"],
];

let projects = [];
let cleanup = null;
let rendering = 0;

function main() {
  return document.getElementById("main");
}

export function navigate(url, replace = false) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  route();
}

function currentProject() {
  const wanted = Number(query().get("project"));
  return projects.find((p) => p.Id === wanted) || null;
}

async function route() {
  const path = location.pathname.replace(/\/+$/, "") || "/console";
  if (path === "/console/signin") return renderSignIn();
  if (path === "/console") return navigate(`/console/instances${location.search}`, true);
  let page = null;
  let params = [];
  for (const [pattern, name] of ROUTES) {
    const m = path.match(pattern);
    if (m) {
      page = name;
      params = m.slice(1);
    }
  }
  // The page's module loads while the session and the workspaces are fetched.
  const loading = page ? import(`./pages/${page}.js`) : null;
  loading?.catch(() => {});
  if (!currentUser()) {
    const found = await session();
    if (!found) {
      location.assign(`/console/signin?next=${encodeURIComponent(location.pathname + location.search)}`);
      return;
    }
    showProjects(found.Projects);
  }
  document.getElementById("top").hidden = false;
  document.getElementById("who").textContent = currentUser();
  if (!page) {
    clear(main(), h("h1", {}, "Not found"), h("p", {}, "No console page has this address."));
    return;
  }
  let project = currentProject();
  if (!project && projects.length) {
    const last = Number(localStorage.getItem("dwsched.project"));
    project = projects.find((p) => p.Id === last) || projects[0];
    if (page !== "instance") {
      const q = query();
      q.set("project", project.Id);
      history.replaceState(null, "", `${location.pathname}?${q}`);
    }
  }
  if (project) localStorage.setItem("dwsched.project", project.Id);
  const picker = document.getElementById("workspace");
  picker.value = project ? String(project.Id) : "";
  for (const a of document.querySelectorAll("nav a[data-page]")) {
    const active = a.dataset.page === page || (page === "instance" && a.dataset.page === "instances");
    if (active) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
    a.href = `/console/${a.dataset.page}${project ? `?project=${project.Id}` : ""}`;
  }
  if (cleanup) {
    try {
      cleanup();
    } catch {}
    cleanup = null;
  }
  const ticket = ++rendering;
  if (!project && page !== "instance") {
    clear(main(), h("h1", {}, "No workspace"), h("p", {}, "Your user may read no workspace. Ask an administrator for a policy and a workspace role."));
    return;
  }
  try {
    const module = await loading;
    if (ticket !== rendering) return;
    const done = await module.render(main(), { project, projects, params, navigate, refresh: route });
    if (ticket === rendering) cleanup = typeof done === "function" ? done : null;
    else if (typeof done === "function") done();
  } catch (error) {
    if (ticket === rendering) clear(main(), errorBox(error));
  }
}

async function loadProjects() {
  showProjects((await call("ListProjects", { PageSize: 100 })).PagingInfo);
}

function showProjects(paging) {
  projects = paging.Projects || [];
  const picker = document.getElementById("workspace");
  clear(picker, projects.map((p) => h("option", { value: p.Id }, `${p.Name} (${p.Id})`)));
}

function renderSignIn() {
  document.getElementById("top").hidden = true;
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const name = h("input", { id: "username", name: "username", autocomplete: "username", required: true, autofocus: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    { class: "signin", onsubmit: submit },
    h("h1", {}, "Sign in to dwsched"),
    h("label", { for: "username" }, "User name"),
    name,
    h("label", { for: "password" }, "Password"),
    password,
    error,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    h("p", { class: "muted" }, "A password is set with: dwsched users passwd NAME"),
  );
  async function submit(event) {
    event.preventDefault();
    error.hidden = true;
    try {
      await signIn(name.value, password.value);
      await loadProjects();
      const next = query().get("next");
      navigate(next && next.startsWith("/console/") && !next.startsWith("/console/signin") ? next : "/console/instances", true);
    } catch (e) {
      error.textContent = e.message;
      error.hidden = false;
      password.select();
    }
  }
  clear(main(), form);
  name.focus();
}

function start() {
  document.addEventListener("click", (event) => {
    const a = event.target.closest("a[data-nav]");
    if (!a || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(a.getAttribute("href"));
  });
  window.addEventListener("popstate", route);
  document.getElementById("workspace").addEventListener("change", (event) => {
    const q = new URLSearchParams();
    q.set("project", event.target.value);
    const page = location.pathname.startsWith("/console/instances/") ? "/console/instances" : location.pathname;
    navigate(`${page}?${q}`);
  });
  document.getElementById("signout").addEventListener("click", async () => {
    try {
      await signOut();
    } finally {
      location.assign("/console/signin");
    }
  });
  route();
}

start();
