// SnippetVault's Mini App: one page over the HTTP API — the list, search, a snippet's view,
// the editor, and sign-in (Telegram's launch data inside Telegram, email and password outside).
import "./style.css";
import { ApiError, api, token, type Snippet, type SnippetSummary } from "./api";
import { formatDate, h, replace } from "./dom";
import type { CodeEditor } from "./editor";
import { PICKER_LANGUAGES, PLAIN_TEXT, languageLabel } from "./languages";
import { type Launch, applyTheme, detectTelegram, webApp } from "./telegram";

const PAGE_SIZE = 50;
const SEARCH_DELAY_MS = 250;
const AUTO_LANGUAGE = "";
const LIST_VISIBLE = "snippetvault:list-visible";

const root = document.getElementById("app") as HTMLElement;
let launch: Launch | null = null;
let editor: CodeEditor | null = null;
let editorModule: Promise<typeof import("./editor")> | null = null;

// Where "back" goes, and what the MainButton does, for the screen on show.
let backAction: (() => void) | null = null;
let mainAction: (() => void) | null = null;
let dirty = false;

const list = {
  query: "",
  tag: "", // only snippets with this tag (a chip was clicked)
  items: [] as SnippetSummary[],
  total: 0,
  loading: false,
  generation: 0,
  failed: null as string | null,
  scrollY: 0,
  stale: true, // a snippet changed since the list was loaded
};

// Navigation ----------------------------------------------------------------------------------
//
// Each place Back should return to is a browser history entry: the list at the bottom, a
// snippet above it, the editor above that (a list filtered by a tag above what it came from).
// Back — the browser's, the app's ← and Telegram's BackButton alike — is `history.back()`,
// and `popstate` shows the place arrived at. The address itself never changes.

type Place =
  | { sv: "list"; tag?: string }
  | { sv: "view"; id: string }
  | { sv: "edit"; id: string }
  | { sv: "create" };

/** The screens of a signed-in user, where history entries lead; on the others (sign-in,
 * refusals, verification) Back changes nothing in the app. */
const PLACE_SCREENS = new Set(["list", "loading", "error", "view", "create", "edit"]);

function here(): Place | null {
  const state = history.state as Place | null;
  return state && typeof state === "object" && "sv" in state ? state : null;
}

function go(place: Place): void {
  history.pushState(place, "");
}

function goBack(): void {
  history.back();
}

let editorPlace: Place | null = null; // the editor's entry, put back when leaving is cancelled

// The app puts the list back where it was itself (and a snippet at its top).
history.scrollRestoration = "manual";
window.addEventListener("popstate", () => void arrive());

let askingToDiscard = false;

async function arrive(): Promise<void> {
  if (!PLACE_SCREENS.has(root.dataset.screen ?? "") || askingToDiscard) return;
  dismissDialog?.(); // Back answers an open dialog (a delete's confirmation…) with Cancel
  if (dirty) {
    const left = editorPlace;
    askingToDiscard = true;
    let discard = false;
    try {
      discard = await confirmDialog("Discard your changes?", "What you changed here is not saved.", "Discard", true);
    } finally {
      askingToDiscard = false;
    }
    if (!discard) {
      if (left) go(left); // stay: the editor's entry is on top again
      return;
    }
    setDirty(false);
  }
  // Where history stands now (Back may have been pressed again while the question was open).
  const place = here();
  const shown = current;
  if (!place || place.sv === "list") {
    showList(filterBy(place?.tag ?? ""));
  } else if (place.sv === "view" || place.sv === "edit") {
    if (shown && String(shown.ref) === place.id) {
      if (place.sv === "view") await showSnippet(shown);
      else await showEditor(shown);
    } else {
      // Not at hand (a forward step after leaving it): fetch it, and show it, not the editor.
      history.replaceState({ sv: "view", id: place.id } satisfies Place, "");
      await openSnippet(place.id);
    }
  } else await showEditor(null);
}

/** Sets the list's tag filter; true when it changed (the list must load again). */
function filterBy(tag: string): boolean {
  if (list.tag === tag) return false;
  list.tag = tag;
  return true;
}

/** A snippet's tags as chips; a click shows the list of that tag (a new history entry). */
function tagChips(tags: string[] | undefined): HTMLElement | null {
  if (!tags?.length) return null;
  return h(
    "div",
    { class: "tags" },
    ...tags.map((tag) =>
      h("button", {
        type: "button", class: "tag", "aria-label": `Show snippets tagged ${tag}`,
        onclick: () => showTag(tag),
      }, `#${tag}`),
    ),
  );
}

function showTag(tag: string): void {
  if (root.dataset.screen === "list") list.scrollY = window.scrollY;
  go({ sv: "list", tag });
  filterBy(tag);
  showList(true);
}

// Screens --------------------------------------------------------------------------------------

let listObserver: IntersectionObserver | null = null;

function screen(name: string, ...children: (Node | null)[]): void {
  closeEditor();
  listObserver?.disconnect();
  listObserver = null;
  setDirty(false);
  mainAction = null; // each screen sets backAction through its topBar
  root.dataset.screen = name;
  replace(root, ...children);
  window.scrollTo(0, 0);
  syncTelegramButtons();
}

function topBar(title: string, actions: Node[] = [], back?: () => void): HTMLElement {
  backAction = back ?? null;
  return h(
    "header",
    { class: "bar" },
    back && !webApp()?.BackButton
      ? h("button", { class: "icon", type: "button", "aria-label": "Back", onclick: back }, "←")
      : null,
    h("h1", {}, title),
    h("div", { class: "bar-actions" }, ...actions),
  );
}

function message(kind: "info" | "error", title: string, text: string, ...actions: Node[]): HTMLElement {
  return h(
    "section",
    { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("h2", {}, title),
    h("p", {}, text),
    actions.length ? h("div", { class: "actions" }, ...actions) : null,
  );
}

function button(label: string, onclick: () => void, kind = "", attributes: Record<string, string> = {}) {
  return h("button", { type: "button", class: kind, onclick, ...attributes }, label);
}

function showSignIn(note = ""): void {
  token.set(null);
  const email = h("input", {
    type: "email", name: "email", autocomplete: "username", required: true, placeholder: "you@example.com",
  });
  const password = h("input", {
    type: "password", name: "password", autocomplete: "current-password", required: true,
  });
  const error = h("p", { class: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", novalidate: true },
    h("h2", {}, "Sign in"),
    note ? h("p", { class: "note" }, note) : null,
    h("label", {}, "Email", email),
    h("label", {}, "Password", password),
    error,
    submit,
    h("p", { class: "hint" }, "No account yet? Send /signup to the SnippetVault bot in Telegram."),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!email.value.trim() || !password.value) {
      error.textContent = "Enter your email and password.";
      return;
    }
    submit.disabled = true;
    error.textContent = "";
    api
      .login(email.value.trim(), password.value)
      .then((answer) => {
        token.set(answer.access_token);
        startSignedIn();
      })
      .catch((failure: unknown) => {
        submit.disabled = false;
        const refused = failure instanceof ApiError ? failure : null;
        if (refused?.status === 401) error.textContent = "Wrong email or password, or the address is not verified yet.";
        else if (refused?.status === 429)
          error.textContent = `Too many attempts. Try again in ${refused.retryAfter ?? 60} seconds.`;
        else error.textContent = refused?.message ?? "Sign-in failed. Please try again.";
      });
  });
  screen("signin", topBar("SnippetVault"), form);
  email.focus();
}

type Refusal = "no-session" | "stale" | "error";

function showRefused(kind: Refusal, detail = ""): void {
  token.set(null);
  const retry = button("Try again", () => void retrySignIn(), "primary");
  const texts: Record<Refusal, [string, string]> = {
    "no-session": [
      "Log in in the chat first",
      "This app opens the account you are logged in to in your chat with the bot. Send " +
        "/login to the bot, then open the app again.",
    ],
    stale: [
      "This sign-in is not valid",
      "Telegram's sign-in for this window has expired or could not be checked. Close the app " +
        "and open it again from the bot's menu button.",
    ],
    error: ["Cannot sign in", detail || "Something went wrong. Please try again."],
  };
  const [title, text] = texts[kind];
  // The same launch data stays stale: only a new launch from Telegram helps, not a retry.
  const actions = kind === "stale" ? [] : [retry];
  screen(`refused-${kind}`, topBar("SnippetVault"), message("error", title, text, ...actions));
}

async function retrySignIn(): Promise<void> {
  if (await signInWithTelegram()) startSignedIn();
}

async function signInWithTelegram(): Promise<boolean> {
  if (!launch) return false;
  try {
    const answer = await api.telegram(launch.initData);
    token.set(answer.access_token);
    return true;
  } catch (failure) {
    const status = failure instanceof ApiError ? failure.status : 0;
    if (status === 403) showRefused("no-session");
    else if (status === 401) showRefused("stale");
    else showRefused("error", failure instanceof Error ? failure.message : "");
    return false;
  }
}

/**
 * Runs an API call; an ended session (401) signs in again inside Telegram (once) or goes to
 * the sign-in screen. Other failures are thrown to the caller to show where they happened.
 */
async function authorized<T>(call: () => Promise<T>): Promise<T | null> {
  try {
    return await call();
  } catch (failure) {
    if (!(failure instanceof ApiError) || failure.status !== 401) throw failure;
  }
  if (!launch) {
    showSignIn("Your session has ended. Please sign in again.");
    return null;
  }
  if (!(await signInWithTelegram())) return null;
  try {
    return await call();
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 401) {
      showRefused("stale");
      return null;
    }
    throw failure;
  }
}

function errorText(failure: unknown): string {
  return failure instanceof Error ? failure.message : "Something went wrong. Please try again.";
}

// The list ------------------------------------------------------------------------------------

function showList(reload = true): void {
  const search = h("input", {
    type: "search", class: "search", placeholder: "Search titles and code", "aria-label": "Search",
    value: list.query, autocomplete: "off", enterkeyhint: "search",
  });
  const items = h("ul", { class: "snippets", "aria-live": "polite" });
  const status = h("div", { class: "list-status" });
  const more = button("Show more", () => void loadMore(items, status, more), "more");
  more.hidden = true;
  let timer = 0;
  search.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      list.query = search.value.trim();
      void reloadList(items, status, more);
    }, SEARCH_DELAY_MS);
  });
  const actions = [button("New", newSnippet, "primary", { "aria-label": "New snippet" })];
  if (!launch) actions.push(button("Sign out", () => void signOut(), "quiet"));
  const filter = list.tag
    ? h("div", { class: "filter-row" },
        h("span", {}, "Tagged ", h("span", { class: "tag" }, `#${list.tag}`)),
        button("Show all", showAll, "quiet", { "aria-label": "Show all snippets" }))
    : null;
  screen(
    "list",
    topBar(list.tag ? `#${list.tag}` : "Your snippets", actions, list.tag ? goBack : undefined),
    h("div", { class: "search-row" }, search),
    filter,
    items,
    status,
    more,
  );
  const sentinel = h("div", { class: "sentinel" });
  root.append(sentinel);
  // Endless scroll: the next page loads as the end of the list comes into view.
  listObserver = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting) && !more.hidden) void loadMore(items, status, more);
  });
  listObserver.observe(sentinel);
  if (reload || list.stale || list.failed !== null) void reloadList(items, status, more);
  else {
    renderItems(items, status, more);
    window.scrollTo(0, list.scrollY);
  }
}

async function reloadList(items: HTMLElement, status: HTMLElement, more: HTMLButtonElement): Promise<void> {
  list.items = [];
  list.total = 0;
  list.stale = false;
  await loadMore(items, status, more, true);
}

async function loadMore(items: HTMLElement, status: HTMLElement, more: HTMLButtonElement, fresh = false): Promise<void> {
  if (list.loading && !fresh) return;
  const generation = fresh ? ++list.generation : list.generation;
  list.loading = true;
  list.failed = null;
  if (fresh) {
    status.className = "list-status loading";
    status.textContent = "Loading…";
  }
  try {
    const page = await authorized(() => api.list(list.query, list.items.length, PAGE_SIZE, list.tag));
    if (page === null || generation !== list.generation) return; // signed out, or a newer search
    list.items = list.items.concat(page.items);
    list.total = page.total;
  } catch (failure) {
    if (generation !== list.generation) return;
    list.failed = errorText(failure);
  } finally {
    if (generation === list.generation) list.loading = false;
  }
  if (root.dataset.screen === "list") renderItems(items, status, more);
}

function renderItems(items: HTMLElement, status: HTMLElement, more: HTMLButtonElement): void {
  replace(items, ...list.items.map(listItem));
  // How long after navigation the list first showed (read by the browser tests' guard).
  if (!performance.getEntriesByName(LIST_VISIBLE).length) performance.mark(LIST_VISIBLE);
  more.hidden = list.failed !== null || list.items.length >= list.total;
  status.className = "list-status";
  if (list.failed !== null) {
    replace(
      status,
      message("error", "Could not load your snippets", list.failed,
        button("Try again", () => void reloadList(items, status, more), "primary")),
    );
  } else if (!list.items.length && list.query) {
    replace(status, message("info", "Nothing found", `No snippet matches “${list.query}”.`));
  } else if (!list.items.length && list.tag) {
    replace(status, message("info", "Nothing found", `No snippet is tagged #${list.tag}.`));
  } else if (!list.items.length) {
    replace(
      status,
      message("info", "No snippets yet",
        "Create one here, or save one in the chat with /save.",
        button("Create a snippet", newSnippet, "primary")),
    );
  } else {
    status.textContent = list.items.length < list.total ? `${list.items.length} of ${list.total}` : `${list.total} in all`;
  }
}

function listItem(item: SnippetSummary): HTMLElement {
  return h(
    "li",
    { class: item.tags?.length ? "tagged" : undefined },
    h(
      "button",
      { type: "button", class: "snippet", onclick: () => viewSnippet(String(item.ref)) },
      h("span", { class: "title" }, item.title),
      h("span", { class: "meta" }, `#${item.ref} · ${languageLabel(item.language)} · ${formatDate(item.created_at)}`),
    ),
    tagChips(item.tags),
  );
}

function viewSnippet(id: string): void {
  list.scrollY = window.scrollY;
  go({ sv: "view", id });
  void openSnippet(id);
}

function newSnippet(): void {
  go({ sv: "create" });
  void showEditor(null);
}

/** Leaves the tag filter where it stands (the entries beneath stay as they were). */
function showAll(): void {
  history.replaceState({ sv: "list" } satisfies Place, "");
  filterBy("");
  showList(true);
}

async function signOut(): Promise<void> {
  try {
    await api.logout();
  } catch {
    // The token is forgotten here whatever the server says.
  }
  showSignIn("You are signed out.");
}

// One snippet ---------------------------------------------------------------------------------

let current: Snippet | null = null;

async function openSnippet(id: string): Promise<void> {
  screen("loading", topBar("Snippet", [], goBack), h("p", { class: "list-status loading" }, "Loading…"));
  try {
    const snippet = await authorized(() => api.get(id));
    if (snippet === null) return;
    current = snippet;
    await showSnippet(snippet);
  } catch (failure) {
    const missing = failure instanceof ApiError && failure.status === 404;
    if (missing) list.stale = true;
    screen(
      "error",
      topBar("Snippet", [], goBack),
      message("error", missing ? "Snippet not found" : "Could not open the snippet",
        missing ? "It may have been deleted, in the chat or elsewhere." : errorText(failure),
        button("Back to the list", goBack, "primary")),
    );
  }
}

async function showSnippet(snippet: Snippet): Promise<void> {
  const code = h("div", { class: "code" });
  const copy = button("Copy", () => void copyCode(snippet.code), "primary");
  screen(
    "view",
    topBar("Snippet", [], goBack),
    h(
      "article",
      { class: "snippet-view" },
      h("h2", { class: "snippet-title" }, snippet.title),
      h("p", { class: "meta" },
        `#${snippet.ref} · ${languageLabel(snippet.language)} · ${formatDate(snippet.updated_at ?? snippet.created_at)}`),
      tagChips(snippet.tags),
      h(
        "div",
        { class: "actions" },
        copy,
        button("Edit", () => editSnippet(snippet)),
        button("Rename", () => void rename(snippet)),
        button("Delete", () => void remove(snippet), "danger"),
      ),
      code,
    ),
  );
  const { createEditor } = await loadEditor();
  if (root.dataset.screen !== "view" || current !== snippet) return;
  editor = createEditor(code, snippet.code, { readOnly: true, language: snippet.language });
}

function editSnippet(snippet: Snippet): void {
  go({ sv: "edit", id: String(snippet.ref) });
  void showEditor(snippet);
}

async function copyCode(code: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(code);
  } catch {
    const area = h("textarea", { class: "offscreen", readonly: true });
    area.value = code;
    document.body.append(area);
    area.select();
    const copied = document.execCommand("copy");
    area.remove();
    if (!copied) {
      toast("Copying is not allowed here; select the code and copy it.");
      return;
    }
  }
  toast("Copied to the clipboard");
}

async function rename(snippet: Snippet): Promise<void> {
  const title = await ask("Rename the snippet", snippet.title, "Rename");
  if (title === null || !title.trim() || title.trim() === snippet.title) return;
  try {
    const renamed = await authorized(() => api.update(snippet.id, { title: title.trim() }));
    if (renamed === null) return;
    current = renamed;
    list.stale = true;
    toast("Renamed");
    await showSnippet(renamed);
  } catch (failure) {
    toast(errorText(failure), true);
  }
}

async function remove(snippet: Snippet): Promise<void> {
  const sure = await confirmDialog(`Delete “${snippet.title}”?`, "This cannot be undone.", "Delete", true);
  if (!sure) return;
  try {
    const done = await authorized(async () => {
      await api.remove(snippet.id);
      return true;
    });
    if (done === null) return;
    list.stale = true;
    current = null;
    toast("Deleted");
    goBack();
  } catch (failure) {
    if (failure instanceof ApiError && failure.status === 404) {
      list.stale = true;
      current = null;
      toast("It was already deleted.");
      goBack();
    } else toast(errorText(failure), true);
  }
}

// The editor ----------------------------------------------------------------------------------

function loadEditor(): Promise<typeof import("./editor")> {
  editorModule ??= import("./editor");
  return editorModule;
}

function closeEditor(): void {
  editor?.destroy();
  editor = null;
}

async function showEditor(snippet: Snippet | null): Promise<void> {
  const creating = snippet === null;
  const title = h("input", {
    type: "text", class: "title-input", name: "title", placeholder: "Title", maxlength: 200,
    "aria-label": "Title", value: snippet?.title ?? "", autocomplete: "off",
  });
  const language = h("select", { "aria-label": "Language", name: "language" });
  const known = new Set(PICKER_LANGUAGES);
  if (creating) language.append(h("option", { value: AUTO_LANGUAGE }, "Detect language"));
  if (snippet && !known.has(snippet.language)) {
    language.append(h("option", { value: snippet.language }, languageLabel(snippet.language)));
  }
  for (const name of PICKER_LANGUAGES) language.append(h("option", { value: name }, languageLabel(name)));
  language.value = snippet?.language ?? AUTO_LANGUAGE;
  const code = h("div", { class: "code editing" });
  const error = h("p", { class: "form-error", role: "alert" });
  const save = button(creating ? "Create" : "Save", () => void submit(), "primary");
  const leave = () => void leaveEditor();
  screen(
    creating ? "create" : "edit",
    topBar(creating ? "New snippet" : "Edit snippet", [], leave),
    h(
      "div",
      { class: "editor-form" },
      title,
      h("div", { class: "editor-tools" }, language,
        h("div", { class: "actions" }, button("Cancel", leave, "quiet"), webApp()?.MainButton ? null : save)),
      error,
      code,
    ),
  );
  const markDirty = () => setDirty(true);
  title.addEventListener("input", markDirty);
  language.addEventListener("change", () => {
    markDirty();
    void editor?.setLanguage(language.value || PLAIN_TEXT);
  });
  mainAction = () => void submit();
  editorPlace = here();
  syncTelegramButtons(creating ? "Create snippet" : "Save changes");

  let busy = false;
  async function submit(): Promise<void> {
    if (busy || !editor) return;
    const text = editor.text();
    const name = title.value.trim();
    if (!name) {
      error.textContent = "Give the snippet a title.";
      title.focus();
      return;
    }
    if (!text.trim()) {
      error.textContent = "There is no code to save.";
      return;
    }
    busy = true;
    save.disabled = true;
    webApp()?.MainButton?.showProgress(false);
    error.textContent = "";
    try {
      let saved: Snippet | null;
      if (snippet === null) {
        saved = await authorized(() => api.create(name, text, language.value || undefined));
      } else {
        const fields: Partial<Pick<Snippet, "title" | "code" | "language">> = {};
        if (name !== snippet.title) fields.title = name;
        if (text !== snippet.code) fields.code = text;
        if (language.value !== snippet.language) fields.language = language.value;
        saved = Object.keys(fields).length ? await authorized(() => api.update(snippet.id, fields)) : snippet;
      }
      if (saved === null) return;
      setDirty(false);
      list.stale = true;
      current = saved;
      toast(creating ? "Created" : "Saved");
      if (creating) {
        // The new snippet takes the editor's place: Back from it goes to the list.
        history.replaceState({ sv: "view", id: String(saved.ref) } satisfies Place, "");
        await showSnippet(saved);
      } else goBack(); // to the snippet's entry, shown from `current`
    } catch (failure) {
      error.textContent = errorText(failure);
      webApp()?.HapticFeedback?.notificationOccurred?.("error");
    } finally {
      busy = false;
      save.disabled = false;
      webApp()?.MainButton?.hideProgress();
    }
  }

  const { createEditor } = await loadEditor();
  if (root.dataset.screen !== (creating ? "create" : "edit")) return;
  editor = createEditor(code, snippet?.code ?? "", {
    readOnly: false,
    language: language.value || PLAIN_TEXT, // picked already, maybe, while the editor loaded
    onChange: markDirty,
  });
  if (creating) title.focus();
  else editor.view.focus();
}

async function leaveEditor(): Promise<void> {
  if (dirty && !(await confirmDialog("Discard your changes?", "What you changed here is not saved.", "Discard", true))) {
    return;
  }
  setDirty(false);
  goBack();
}

function setDirty(value: boolean): void {
  if (dirty === value) return;
  dirty = value;
  const app = webApp();
  if (value) app?.enableClosingConfirmation?.();
  else app?.disableClosingConfirmation?.();
}

window.addEventListener("beforeunload", (event) => {
  if (dirty) event.preventDefault();
});

// Telegram's buttons --------------------------------------------------------------------------

function syncTelegramButtons(mainText?: string): void {
  const app = webApp();
  if (!app) return;
  if (backAction) app.BackButton?.show();
  else app.BackButton?.hide();
  if (mainAction && mainText) {
    app.MainButton?.setText(mainText);
    app.MainButton?.enable();
    app.MainButton?.show();
  } else app.MainButton?.hide();
}

function wireTelegram(): void {
  const app = webApp();
  if (!app) return;
  app.MainButton?.onClick(() => mainAction?.());
  app.BackButton?.onClick(() => backAction?.());
  app.onEvent?.("themeChanged", () => launch && applyTheme(launch));
  app.ready?.();
  app.expand?.();
}

// Dialogs and toasts --------------------------------------------------------------------------

let dismissDialog: (() => void) | null = null; // the open dialog's Cancel

function modal(build: (close: (value: string | null) => void) => HTMLElement[]): Promise<string | null> {
  return new Promise((resolve) => {
    dismissDialog?.();
    const previous = document.activeElement as HTMLElement | null;
    const overlay = h("div", { class: "overlay" });
    const close = (value: string | null) => {
      if (dismissDialog === cancel) dismissDialog = null;
      overlay.remove();
      previous?.focus?.();
      resolve(value);
    };
    const cancel = () => close(null);
    dismissDialog = cancel;
    const box = h("div", { class: "dialog", role: "dialog", "aria-modal": "true" }, ...build(close));
    overlay.append(box);
    overlay.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close(null);
    });
    overlay.addEventListener("click", (event) => {
      if (event.target === overlay) close(null);
    });
    document.body.append(overlay);
    (box.querySelector("input, button.primary, button.danger") as HTMLElement | null)?.focus();
  });
}

async function confirmDialog(title: string, text: string, yes: string, danger = false): Promise<boolean> {
  const answer = await modal((close) => [
    h("h2", {}, title),
    h("p", {}, text),
    h("div", { class: "actions" },
      button("Cancel", () => close(null), "quiet"),
      button(yes, () => close("yes"), danger ? "danger" : "primary")),
  ]);
  return answer === "yes";
}

function ask(title: string, initial: string, yes: string): Promise<string | null> {
  return modal((close) => {
    const input = h("input", { type: "text", maxlength: 200, "aria-label": title, value: initial });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") close(input.value);
    });
    return [
      h("h2", {}, title),
      input,
      h("div", { class: "actions" },
        button("Cancel", () => close(null), "quiet"),
        button(yes, () => close(input.value), "primary")),
    ];
  });
}

let toastTimer = 0;
function toast(text: string, error = false): void {
  let element = document.getElementById("toast");
  if (!element) {
    element = h("div", { id: "toast", role: "status", "aria-live": "polite" });
    document.body.append(element);
  }
  element.textContent = text;
  element.className = error ? "show error" : "show";
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => element?.classList.remove("show"), 2500);
}

// Start ---------------------------------------------------------------------------------------

async function verifyFromLink(code: string): Promise<void> {
  history.replaceState(null, "", location.pathname + location.search);
  screen("verifying", topBar("SnippetVault"), h("p", { class: "list-status loading" }, "Verifying your email…"));
  try {
    await api.verify(code);
    screen("verified", topBar("SnippetVault"),
      message("info", "Your email is verified", "You can sign in now, here or in the chat with /login.",
        button("Sign in", () => showSignIn(), "primary")));
  } catch (failure) {
    const wrong = failure instanceof ApiError && failure.status === 400;
    screen("verify-failed", topBar("SnippetVault"),
      message("error", "Verification failed",
        wrong ? "This verification link is wrong, already used or expired. Log in in the chat with /login to get a new one."
          : errorText(failure),
        button("Sign in", () => showSignIn(), "primary")));
  }
}

function startSignedIn(): void {
  const wanted = new URLSearchParams(location.search).get("snippet");
  filterBy("");
  if (wanted && /^\d{1,10}$/.test(wanted)) {
    // The list goes beneath the snippet a button opened: Back leads there, not out.
    history.replaceState({ sv: "list" } satisfies Place, "", location.pathname + location.hash);
    viewSnippet(wanted);
  } else {
    history.replaceState({ sv: "list" } satisfies Place, "");
    showList(true);
  }
}

async function start(): Promise<void> {
  const verify = new URLSearchParams(location.hash.slice(1)).get("verify");
  if (verify) return verifyFromLink(verify);
  const telegram = detectTelegram();
  if (telegram) {
    // Signing in and loading Telegram's script run side by side: the list shows sooner.
    launch = telegram.early;
    if (launch) applyTheme(launch);
    const signedIn = launch ? signInWithTelegram() : null;
    launch = await telegram.complete;
    if (launch) {
      applyTheme(launch);
      wireTelegram();
      if (await (signedIn ?? signInWithTelegram())) startSignedIn();
      else syncTelegramButtons();
      return;
    }
  }
  document.documentElement.classList.add("in-browser");
  if (token.get()) startSignedIn();
  else showSignIn();
}

// A verification link opened while the app is already open changes only the fragment.
window.addEventListener("hashchange", () => {
  const verify = new URLSearchParams(location.hash.slice(1)).get("verify");
  if (verify) void verifyFromLink(verify);
});

void start();
