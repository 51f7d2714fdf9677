// Editor language modes, keyed by the names core detects (Pygments' canonical lexer names, see
// core/text.py). Each mode is a dynamic import, so esbuild splits it into its own chunk and the
// first load carries none of them.
import type { Extension } from "@codemirror/state";

type Loader = () => Promise<Extension>;

const legacy = (load: () => Promise<Parameters<typeof import("@codemirror/language").StreamLanguage.define>[0]>): Loader =>
  async () => {
    const [{ StreamLanguage }, mode] = await Promise.all([import("@codemirror/language"), load()]);
    return StreamLanguage.define(mode);
  };

const LOADERS: Record<string, Loader> = {
  Python: async () => (await import("@codemirror/lang-python")).python(),
  JavaScript: async () => (await import("@codemirror/lang-javascript")).javascript(),
  JSX: async () => (await import("@codemirror/lang-javascript")).javascript({ jsx: true }),
  TypeScript: async () =>
    (await import("@codemirror/lang-javascript")).javascript({ typescript: true }),
  TSX: async () =>
    (await import("@codemirror/lang-javascript")).javascript({ typescript: true, jsx: true }),
  Go: async () => (await import("@codemirror/lang-go")).go(),
  Rust: async () => (await import("@codemirror/lang-rust")).rust(),
  Java: async () => (await import("@codemirror/lang-java")).java(),
  C: async () => (await import("@codemirror/lang-cpp")).cpp(),
  "C++": async () => (await import("@codemirror/lang-cpp")).cpp(),
  "Objective-C": legacy(async () => (await import("@codemirror/legacy-modes/mode/clike")).objectiveC),
  "C#": legacy(async () => (await import("@codemirror/legacy-modes/mode/clike")).csharp),
  Kotlin: legacy(async () => (await import("@codemirror/legacy-modes/mode/clike")).kotlin),
  Scala: legacy(async () => (await import("@codemirror/legacy-modes/mode/clike")).scala),
  Dart: legacy(async () => (await import("@codemirror/legacy-modes/mode/clike")).dart),
  SQL: async () => (await import("@codemirror/lang-sql")).sql(),
  MySQL: async () => {
    const m = await import("@codemirror/lang-sql");
    return m.sql({ dialect: m.MySQL });
  },
  "PostgreSQL SQL dialect": async () => {
    const m = await import("@codemirror/lang-sql");
    return m.sql({ dialect: m.PostgreSQL });
  },
  "Transact-SQL": async () => {
    const m = await import("@codemirror/lang-sql");
    return m.sql({ dialect: m.MSSQL });
  },
  Bash: legacy(async () => (await import("@codemirror/legacy-modes/mode/shell")).shell),
  "Bash Session": legacy(async () => (await import("@codemirror/legacy-modes/mode/shell")).shell),
  PowerShell: legacy(async () => (await import("@codemirror/legacy-modes/mode/powershell")).powerShell),
  HTML: async () => (await import("@codemirror/lang-html")).html(),
  XML: legacy(async () => (await import("@codemirror/legacy-modes/mode/xml")).xml),
  CSS: async () => (await import("@codemirror/lang-css")).css(),
  SCSS: legacy(async () => (await import("@codemirror/legacy-modes/mode/css")).sCSS),
  LessCss: legacy(async () => (await import("@codemirror/legacy-modes/mode/css")).less),
  JSON: async () => (await import("@codemirror/lang-json")).json(),
  YAML: async () => (await import("@codemirror/lang-yaml")).yaml(),
  TOML: legacy(async () => (await import("@codemirror/legacy-modes/mode/toml")).toml),
  INI: legacy(async () => (await import("@codemirror/legacy-modes/mode/properties")).properties),
  Markdown: async () => (await import("@codemirror/lang-markdown")).markdown(),
  PHP: async () => (await import("@codemirror/lang-php")).php(),
  Ruby: legacy(async () => (await import("@codemirror/legacy-modes/mode/ruby")).ruby),
  Lua: legacy(async () => (await import("@codemirror/legacy-modes/mode/lua")).lua),
  Perl: legacy(async () => (await import("@codemirror/legacy-modes/mode/perl")).perl),
  Swift: legacy(async () => (await import("@codemirror/legacy-modes/mode/swift")).swift),
  Haskell: legacy(async () => (await import("@codemirror/legacy-modes/mode/haskell")).haskell),
  Erlang: legacy(async () => (await import("@codemirror/legacy-modes/mode/erlang")).erlang),
  Clojure: legacy(async () => (await import("@codemirror/legacy-modes/mode/clojure")).clojure),
  Docker: legacy(async () => (await import("@codemirror/legacy-modes/mode/dockerfile")).dockerFile),
  Diff: legacy(async () => (await import("@codemirror/legacy-modes/mode/diff")).diff),
  "Nginx configuration file": legacy(async () => (await import("@codemirror/legacy-modes/mode/nginx")).nginx),
  "Protocol Buffer": legacy(async () => (await import("@codemirror/legacy-modes/mode/protobuf")).protobuf),
  Groovy: legacy(async () => (await import("@codemirror/legacy-modes/mode/groovy")).groovy),
  S: legacy(async () => (await import("@codemirror/legacy-modes/mode/r")).r),
};

export const PLAIN_TEXT = "Text";

/** The picker's choices: the common languages first by name, plain text last. */
export const PICKER_LANGUAGES: readonly string[] = [
  "Bash", "C", "C#", "C++", "CSS", "Dart", "Diff", "Docker", "Go", "HTML", "INI", "Java",
  "JavaScript", "JSON", "Kotlin", "Lua", "Markdown", "PHP", "Perl", "PowerShell", "Python",
  "Ruby", "Rust", "Scala", "SCSS", "SQL", "Swift", "TOML", "TypeScript", "XML", "YAML",
  PLAIN_TEXT,
];

/** What the picker shows for a name whose Pygments spelling is not what people call it. */
export function languageLabel(name: string): string {
  return name === "S" ? "R" : name === "LessCss" ? "Less" : name;
}

/** The mode for `name`, or none (plain text) for a language without one. */
export async function loadLanguage(name: string): Promise<Extension> {
  const loader = LOADERS[name];
  return loader ? loader() : [];
}
