// Telegram's side: launch data, theme, MainButton, BackButton and closing confirmation.
//
// Telegram opens the app with `#tgWebAppData=…&tgWebAppThemeParams=…` in the URL. Only then is
// Telegram's own script loaded (in a plain browser the page never contacts telegram.org), and
// when it cannot load, the launch data and theme are read from the fragment directly.

export const TELEGRAM_SCRIPT = "https://telegram.org/js/telegram-web-app.js";
const LAUNCH_KEY = "snippetvault.tgLaunch";
const SCRIPT_TIMEOUT_MS = 4000;

interface BottomButton {
  setText(text: string): unknown;
  show(): unknown;
  hide(): unknown;
  enable(): unknown;
  disable(): unknown;
  showProgress(leaveActive?: boolean): unknown;
  hideProgress(): unknown;
  onClick(callback: () => void): unknown;
  offClick(callback: () => void): unknown;
}

interface WebApp {
  initData: string;
  colorScheme?: "light" | "dark";
  themeParams?: Record<string, string>;
  MainButton?: BottomButton;
  BackButton?: Omit<BottomButton, "setText" | "enable" | "disable" | "showProgress" | "hideProgress">;
  ready?(): void;
  expand?(): void;
  enableClosingConfirmation?(): void;
  disableClosingConfirmation?(): void;
  onEvent?(event: string, callback: () => void): void;
  HapticFeedback?: { notificationOccurred?(type: "error" | "success" | "warning"): void };
}

declare global {
  interface Window {
    Telegram?: { WebApp?: WebApp };
  }
}

export interface Launch {
  initData: string;
  themeParams: Record<string, string>;
  colorScheme: "light" | "dark" | null;
}

function fragmentLaunch(): Launch | null {
  const params = new URLSearchParams(location.hash.slice(1));
  let initData = params.get("tgWebAppData");
  let theme = params.get("tgWebAppThemeParams");
  if (initData) {
    // Remembered for this tab: Telegram's fragment is gone after a reload on some clients.
    try {
      sessionStorage.setItem(LAUNCH_KEY, JSON.stringify({ initData, theme }));
    } catch {
      // no storage: a reload will simply need Telegram to pass it again
    }
  } else {
    try {
      const saved = JSON.parse(sessionStorage.getItem(LAUNCH_KEY) ?? "null") as {
        initData?: string;
        theme?: string | null;
      } | null;
      initData = saved?.initData ?? null;
      theme = saved?.theme ?? null;
    } catch {
      initData = null;
    }
  }
  if (!initData) return null;
  let themeParams: Record<string, string> = {};
  try {
    themeParams = theme ? (JSON.parse(theme) as Record<string, string>) : {};
  } catch {
    themeParams = {};
  }
  return { initData, themeParams, colorScheme: null };
}

function loadScript(): Promise<void> {
  return new Promise((resolve) => {
    if (window.Telegram?.WebApp) return resolve();
    const script = document.createElement("script");
    script.src = TELEGRAM_SCRIPT;
    const timer = window.setTimeout(resolve, SCRIPT_TIMEOUT_MS);
    const done = () => {
      window.clearTimeout(timer);
      resolve();
    };
    script.onload = done;
    script.onerror = done;
    document.head.append(script);
  });
}

/**
 * The Telegram launch, or null in a plain browser. `early` is what the URL already says (no
 * waiting: sign-in starts with it while Telegram's script loads); `complete` resolves once the
 * script is there (or failed to come), with what it adds.
 */
export function detectTelegram(): { early: Launch | null; complete: Promise<Launch | null> } | null {
  const early = fragmentLaunch();
  if (!early && !window.Telegram?.WebApp) return null;
  const complete = loadScript().then(() => {
    const app = webApp();
    if (!app?.initData) return early;
    return {
      initData: app.initData,
      themeParams: { ...(early?.themeParams ?? {}), ...(app.themeParams ?? {}) },
      colorScheme: app.colorScheme ?? null,
    };
  });
  return { early, complete };
}

export function webApp(): WebApp | null {
  return window.Telegram?.WebApp ?? null;
}

/** Luminance of a `#rrggbb` colour, to tell a dark theme from a light one. */
function isDark(color: string | undefined): boolean | null {
  const match = /^#([0-9a-f]{6})$/i.exec(color ?? "");
  if (!match) return null;
  const value = parseInt(match[1], 16);
  const [r, g, b] = [(value >> 16) & 255, (value >> 8) & 255, value & 255];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b < 128;
}

const THEME_VARIABLES: Record<string, string> = {
  bg_color: "--bg",
  secondary_bg_color: "--bg-2",
  section_bg_color: "--section-bg",
  text_color: "--text",
  hint_color: "--hint",
  subtitle_text_color: "--subtitle",
  link_color: "--link",
  accent_text_color: "--accent",
  button_color: "--button",
  button_text_color: "--button-text",
  destructive_text_color: "--danger",
  section_separator_color: "--separator",
  header_bg_color: "--header-bg",
};

/** Telegram's colours as the page's CSS variables, and light or dark for everything else. */
export function applyTheme(launch: Launch): void {
  const app = webApp();
  const params = { ...launch.themeParams, ...(app?.themeParams ?? {}) };
  const root = document.documentElement;
  for (const [key, variable] of Object.entries(THEME_VARIABLES)) {
    const value = params[key];
    if (value && /^#[0-9a-f]{3,8}$/i.test(value)) root.style.setProperty(variable, value);
    else root.style.removeProperty(variable);
  }
  const scheme = app?.colorScheme ?? launch.colorScheme;
  const dark = scheme ? scheme === "dark" : (isDark(params.bg_color) ?? false);
  root.dataset.theme = dark ? "dark" : "light";
  root.classList.add("in-telegram");
}
