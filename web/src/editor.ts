// The code editor (CodeMirror 6), loaded on demand the first time a snippet is opened, so the
// list shows without it.
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import { bracketMatching, indentOnInput, syntaxHighlighting } from "@codemirror/language";
import { highlightSelectionMatches, searchKeymap } from "@codemirror/search";
import { Compartment, EditorState } from "@codemirror/state";
import {
  EditorView,
  drawSelection,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from "@codemirror/view";
import { classHighlighter } from "@lezer/highlight";
import { loadLanguage } from "./languages";

export interface CodeEditor {
  readonly view: EditorView;
  text(): string;
  setLanguage(name: string): Promise<void>;
  destroy(): void;
}

const theme = EditorView.theme({
  "&": { backgroundColor: "var(--code-bg)", color: "var(--text)", fontSize: "14px" },
  ".cm-content": { fontFamily: "var(--mono)", caretColor: "var(--accent)" },
  ".cm-gutters": {
    backgroundColor: "var(--code-bg)",
    color: "var(--hint)",
    borderRight: "1px solid var(--separator)",
  },
  ".cm-activeLine, .cm-activeLineGutter": { backgroundColor: "var(--active-line)" },
  "&.cm-focused": { outline: "none" },
  "&.cm-focused .cm-cursor": { borderLeftColor: "var(--accent)" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground, ::selection": {
    backgroundColor: "var(--selection)",
  },
  ".cm-scroller": { lineHeight: "1.5" },
});

export function createEditor(
  parent: HTMLElement,
  code: string,
  options: { readOnly: boolean; language: string; onChange?: () => void },
): CodeEditor {
  const language = new Compartment();
  const extensions = [
    lineNumbers(),
    drawSelection(),
    syntaxHighlighting(classHighlighter),
    theme,
    EditorView.lineWrapping,
    language.of([]),
    EditorState.readOnly.of(options.readOnly),
    EditorView.editable.of(!options.readOnly),
    EditorView.contentAttributes.of({ "aria-label": "Code" }),
  ];
  if (!options.readOnly) {
    extensions.push(
      history(),
      indentOnInput(),
      bracketMatching(),
      highlightActiveLine(),
      highlightActiveLineGutter(),
      highlightSelectionMatches(),
      EditorState.tabSize.of(4),
      keymap.of([...defaultKeymap, ...historyKeymap, ...searchKeymap, indentWithTab]),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) options.onChange?.();
      }),
    );
  }
  const view = new EditorView({ parent, doc: code, extensions });
  let wanted = "";
  const editor: CodeEditor = {
    view,
    text: () => view.state.doc.toString(),
    async setLanguage(name: string) {
      wanted = name;
      const extension = await loadLanguage(name);
      // A slower mode that arrives after a newer choice must not replace it.
      if (wanted === name) view.dispatch({ effects: language.reconfigure(extension) });
    },
    destroy: () => view.destroy(),
  };
  // Without its mode (a chunk that failed to load) the code still shows, as plain text.
  editor.setLanguage(options.language).catch(() => undefined);
  return editor;
}
