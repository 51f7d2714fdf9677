// The HTTP API (the contract's "HTTP API"), relative to where the app is served: the app lives at
// <base>/app/ and the API at <base>/, so a deployment under a path prefix works unchanged.

export interface SnippetSummary {
  id: string;
  ref: number;
  title: string;
  language: string;
  created_at: string;
  updated_at?: string;
  tags?: string[];
}

export interface Snippet extends SnippetSummary {
  code: string;
}

export interface Page {
  items: SnippetSummary[];
  total: number;
  limit: number;
  offset: number;
}

export interface TokenAnswer {
  access_token: string;
  token_type: string;
  expires_in: number;
}

/** A refused or failed request; `status` 0 means the server could not be reached. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
  }
}

const TOKEN_KEY = "snippetvault.token";

/** The session token: sessionStorage (this tab only, gone when it closes), else memory. */
class TokenStore {
  private memory: string | null = null;

  get(): string | null {
    try {
      return sessionStorage.getItem(TOKEN_KEY) ?? this.memory;
    } catch {
      return this.memory;
    }
  }

  set(token: string | null): void {
    this.memory = token;
    try {
      if (token === null) sessionStorage.removeItem(TOKEN_KEY);
      else sessionStorage.setItem(TOKEN_KEY, token);
    } catch {
      // Storage can be disabled; memory is enough for this page's life.
    }
  }
}

export const token = new TokenStore();

function url(path: string): string {
  return new URL(`..${path}`, document.baseURI).toString();
}

async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  authorized = true,
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const bearer = token.get();
  if (authorized && bearer) headers.Authorization = `Bearer ${bearer}`;
  let response: Response;
  try {
    response = await fetch(url(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "The server cannot be reached. Check your connection and try again.");
  }
  if (response.status === 204) return undefined as T;
  const data: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const retry = Number(response.headers.get("Retry-After"));
    throw new ApiError(response.status, describe(response.status, data), retry > 0 ? retry : null);
  }
  return data as T;
}

/** The API's `detail` in words a person reads; 422 details are lists of field errors. */
function describe(status: number, data: unknown): string {
  const detail = (data as { detail?: unknown } | null)?.detail;
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail) && detail.length) {
    return detail
      .map((item: { loc?: unknown[]; msg?: string }) => {
        const field = (item.loc ?? []).filter((part) => part !== "body").join(".");
        return field ? `${field}: ${item.msg ?? "invalid"}` : (item.msg ?? "invalid");
      })
      .join("; ");
  }
  if (status >= 500) return "Something went wrong on the server. Please try again in a moment.";
  return `The request failed (${status}).`;
}

export const api = {
  login: (email: string, password: string) =>
    request<TokenAnswer>("POST", "/auth/login", { email, password }, false),
  telegram: (initData: string) =>
    request<TokenAnswer>("POST", "/auth/telegram", { init_data: initData }, false),
  verify: (code: string) => request<unknown>("POST", "/auth/verify", { code }, false),
  logout: () => request<void>("POST", "/auth/logout"),
  me: () => request<{ id: string; email: string; is_verified: boolean }>("GET", "/me"),
  list: (q: string, offset: number, limit: number, tag = "") => {
    const query = new URLSearchParams({ limit: String(limit), offset: String(offset) });
    if (q) query.set("q", q);
    if (tag) query.set("tag", tag);
    return request<Page>("GET", `/snippets?${query}`);
  },
  get: (id: string) => request<Snippet>("GET", `/snippets/${encodeURIComponent(id)}`),
  create: (title: string, code: string, language?: string) =>
    request<Snippet>("POST", "/snippets", language ? { title, code, language } : { title, code }),
  update: (id: string, fields: Partial<Pick<Snippet, "title" | "code" | "language">>) =>
    request<Snippet>("PATCH", `/snippets/${encodeURIComponent(id)}`, fields),
  remove: (id: string) => request<void>("DELETE", `/snippets/${encodeURIComponent(id)}`),
};
