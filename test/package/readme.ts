/**
 * The README's library examples, as printed: the TypeScript code blocks marked with a
 * `<!-- example -->` line just above them (blank lines allowed between), or, where the README
 * marks none, every TypeScript block of its section "The library" (up to the next heading of the
 * same or a higher level). Fences inside other blocks (a `#` comment in a shell block) are code,
 * never headings.
 */
export interface Example {
  /** 1-based line of the opening fence */
  line: number;
  code: string;
}

const TS = new Set(['ts', 'typescript', 'mts']);
const MARK = /^\s*<!--\s*example\s*-->\s*$/i;

interface Block {
  line: number;
  lang: string;
  code: string;
  marked: boolean;
  /** the heading path at the block: [level, text] of each enclosing heading */
  section: [number, string][];
}

function blocks(markdown: string): Block[] {
  const lines = markdown.split(/\r?\n/);
  const out: Block[] = [];
  const section: [number, string][] = [];
  let lastText = '';
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const fence = /^ {0,3}(`{3,}|~{3,})\s*([\w+-]*)/.exec(l);
    if (fence) {
      const close = new RegExp(`^ {0,3}${fence[1]![0] === '`' ? '`' : '~'}{${fence[1]!.length},}\\s*$`);
      const start = i;
      const body: string[] = [];
      for (i++; i < lines.length && !close.test(lines[i]!); i++) body.push(lines[i]!);
      out.push({ line: start + 1, lang: fence[2]!.toLowerCase(), code: body.join('\n') + '\n', marked: MARK.test(lastText), section: [...section] });
      lastText = '';
      continue;
    }
    const h = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(l);
    if (h) {
      const level = h[1]!.length;
      while (section.length > 0 && section[section.length - 1]![0] >= level) section.pop();
      section.push([level, h[2]!]);
    }
    if (l.trim() !== '') lastText = l;
  }
  return out;
}

export function readmeExamples(markdown: string): Example[] {
  const all = blocks(markdown).filter((b) => TS.has(b.lang));
  const marked = all.filter((b) => b.marked);
  const chosen = marked.length > 0 ? marked : all.filter((b) => b.section.some(([, text]) => /^the library\b/i.test(text)));
  return chosen.map((b) => ({ line: b.line, code: b.code }));
}
