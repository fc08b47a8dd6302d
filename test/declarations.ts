/**
 * What a TypeScript user of the package can name: a reader of the .d.ts files tsc emits, enough
 * for their regular shape (one declaration per statement, imports and re-exports by name). It
 * follows every name the public entry exports to its declaration, then every type those
 * declarations mention (members, parameters, results, heritage, `import("...").X`, `typeof X`),
 * and lists the ones of the package that the entry does not export: types in the public API that
 * a user cannot write down. Names from other packages and the global ones (Promise, ...) are not
 * the package's to export. (typescript 7's compiler has no JavaScript API to ask instead.)
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

type Token = string;

/** The tokens of a .d.ts text: identifiers, string literals (quoted), punctuation; comments dropped. */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) i++;
    else if (text.startsWith('//', i)) i = text.indexOf('\n', i) === -1 ? text.length : text.indexOf('\n', i);
    else if (text.startsWith('/*', i)) i = text.indexOf('*/', i + 2) + 2;
    else if (c === "'" || c === '"' || c === '`') {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out.push(text.slice(i, j + 1));
      i = j + 1;
    } else if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z_$][\w$]*/.exec(text.slice(i, i + 200))!;
      out.push(m[0]);
      i += m[0].length;
    } else if (/\d/.test(c)) {
      const m = /^\d[\w.]*/.exec(text.slice(i, i + 100))!;
      out.push(m[0]);
      i += m[0].length;
    } else if (text.startsWith('=>', i) || text.startsWith('...', i)) {
      const t = text.startsWith('=>', i) ? '=>' : '...';
      out.push(t);
      i += t.length;
    } else {
      out.push(c);
      i++;
    }
  }
  return out;
}

/** Top-level statements: up to a `;` outside brackets, or the `}` that closes an interface, class, enum or namespace. */
function statements(tokens: Token[]): Token[][] {
  const out: Token[][] = [];
  let i = 0;
  while (i < tokens.length) {
    const start = i;
    let depth = 0;
    let block = false;
    let assigned = false;
    for (; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (depth === 0 && t === '=') assigned = true;
      if (depth === 0 && !assigned && ['interface', 'class', 'enum', 'namespace'].includes(t)) block = true;
      if (t === '(' || t === '{' || t === '[') depth++;
      else if (t === ')' || t === '}' || t === ']') depth--;
      if (depth === 0 && (t === ';' || (t === '}' && block))) {
        i++;
        break;
      }
    }
    out.push(tokens.slice(start, i));
  }
  return out;
}

const isIdent = (t: Token | undefined): t is string => t !== undefined && /^[A-Za-z_$]/.test(t);
const unquote = (t: Token): string => t.slice(1, -1);

interface Decl {
  tokens: Token[];
  /** the index of the declared name in tokens */
  at: number;
  exported: boolean;
}

interface Module {
  decls: Map<string, Decl[]>;
  /** local name -> the module and the name it has there (`*`: a namespace import) */
  imports: Map<string, { from: string; name: string }>;
  /** exported name -> a module's name (`export { a as b } from`) or, without `from`, a local name */
  reexports: Map<string, { from?: string; name: string }>;
  stars: string[];
}

/** `{ a, type b as c }` from index `open` (the `{`): [name there, name here] pairs, and the index after `}`. */
function braceList(t: Token[], open: number): { pairs: [string, string][]; end: number } {
  const pairs: [string, string][] = [];
  let i = open + 1;
  while (t[i] !== '}') {
    if (t[i] === ',') {
      i++;
      continue;
    }
    if (t[i] === 'type' && isIdent(t[i + 1]) && t[i + 1] !== 'as') i++;
    const there = t[i]!;
    let here = there;
    i++;
    if (t[i] === 'as') {
      here = t[i + 1]!;
      i += 2;
    }
    pairs.push([there, here]);
  }
  return { pairs, end: i + 1 };
}

function parseModule(text: string): Module {
  const m: Module = { decls: new Map(), imports: new Map(), reexports: new Map(), stars: [] };
  for (const t of statements(tokenize(text))) {
    if (t[0] === 'import') {
      let i = t[1] === 'type' ? 2 : 1;
      const from = unquote(t[t.indexOf('from') + 1]!);
      if (t[i] === '*') m.imports.set(t[i + 2]!, { from, name: '*' });
      else {
        if (isIdent(t[i]) && t[i] !== 'from') {
          m.imports.set(t[i]!, { from, name: 'default' });
          i += t[i + 1] === ',' ? 2 : 1;
        }
        if (t[i] === '{') for (const [there, here] of braceList(t, i).pairs) m.imports.set(here, { from, name: there });
      }
      continue;
    }
    if (t[0] === 'export' && (t[1] === '{' || t[1] === '*' || (t[1] === 'type' && t[2] === '{'))) {
      const fromAt = t.indexOf('from');
      const from = fromAt === -1 ? undefined : unquote(t[fromAt + 1]!);
      if (t[1] === '*') m.stars.push(from!);
      else for (const [there, here] of braceList(t, t.indexOf('{')).pairs) m.reexports.set(here, { from, name: there });
      continue;
    }
    let i = 0;
    const exported = t[0] === 'export';
    while (['export', 'default', 'declare', 'abstract'].includes(t[i]!)) i++;
    if (['interface', 'type', 'class', 'function', 'const', 'let', 'var', 'enum', 'namespace'].includes(t[i]!) && isIdent(t[i + 1])) {
      const name = t[i + 1]!;
      m.decls.set(name, [...(m.decls.get(name) ?? []), { tokens: t, at: i + 1, exported }]);
    }
  }
  return m;
}

/** A declaration of the package: its file (relative to the declarations' folder) and name. */
export interface DeclRef {
  file: string;
  name: string;
}
const key = (r: DeclRef): string => `${r.file}#${r.name}`;

/** Member and parameter names, which are not types: `name:`, `name?:`, `name(`, `name<` at a member's start. */
const MEMBER_START = new Set(['{', ';', 'readonly', 'static', 'get', 'set', 'abstract', 'protected', 'public', 'override', 'accessor']);
const PARAM_START = new Set([',', '(', '...']);

export class Declarations {
  private readonly modules = new Map<string, Module>();

  constructor(private readonly root: string) {}

  private module(file: string): Module {
    let m = this.modules.get(file);
    if (!m) {
      m = parseModule(readFileSync(join(this.root, file), 'utf8'));
      this.modules.set(file, m);
    }
    return m;
  }

  /** The file a relative specifier names (`./x.ts`, `./x.js`: `./x.d.ts`), or undefined for another package's. */
  private target(from: string, spec: string): string | undefined {
    if (!spec.startsWith('.')) return undefined;
    return relative(this.root, join(this.root, dirname(from), spec.replace(/\.(ts|js)$/, '') + '.d.ts'));
  }

  /** What `name`, as exported from `file`, is declared as (undefined: another package's, or not found). */
  exported(file: string, name: string, depth = 0): DeclRef | undefined {
    if (depth > 50) return undefined;
    const m = this.module(file);
    if (m.decls.get(name)?.some((d) => d.exported)) return { file, name };
    const re = m.reexports.get(name);
    if (re) {
      if (re.from === undefined) return this.local(file, re.name, depth + 1);
      const t = this.target(file, re.from);
      return t === undefined ? undefined : this.exported(t, re.name, depth + 1);
    }
    for (const s of m.stars) {
      const t = this.target(file, s);
      const r = t === undefined ? undefined : this.exported(t, name, depth + 1);
      if (r) return r;
    }
    return undefined;
  }

  /** What a name used inside `file` is declared as (undefined: a global, a type parameter, another package's). */
  local(file: string, name: string, depth = 0): DeclRef | undefined {
    const m = this.module(file);
    if (m.decls.has(name)) return { file, name };
    const imp = m.imports.get(name);
    if (!imp || imp.name === '*') return undefined;
    const t = this.target(file, imp.from);
    return t === undefined ? undefined : this.exported(t, imp.name, depth + 1);
  }

  /** Every name `file` exports, as the declarations they are. */
  exportsOf(file: string): Map<string, DeclRef> {
    const m = this.module(file);
    const out = new Map<string, DeclRef>();
    const names = [...[...m.decls].filter(([, ds]) => ds.some((d) => d.exported)).map(([n]) => n), ...m.reexports.keys()];
    for (const n of names) {
      const r = this.exported(file, n);
      if (r) out.set(n, r);
    }
    return out;
  }

  /** The package's declarations that the declaration of `ref` mentions. */
  mentions(ref: DeclRef): DeclRef[] {
    const m = this.module(ref.file);
    const out: DeclRef[] = [];
    for (const d of m.decls.get(ref.name) ?? []) {
      const t = d.tokens;
      for (let i = 0; i < t.length; i++) {
        const name = t[i];
        if (i === d.at || !isIdent(name)) continue;
        const prev = t[i - 1];
        const next = t[i + 1];
        if (MEMBER_START.has(prev!) && [':', '?', '(', '<', '='].includes(next!)) continue;
        if (PARAM_START.has(prev!) && [':', '?', '='].includes(next!)) continue;
        if (prev === '.') {
          // X.Name: X a namespace import, or import("./x.ts").Name
          const ns = t[i - 2];
          let from: string | undefined;
          if (isIdent(ns) && m.imports.get(ns)?.name === '*') from = m.imports.get(ns)!.from;
          else if (ns === ')' && t[i - 5] === 'import' && t[i - 4] === '(') from = unquote(t[i - 3]!);
          const file = from === undefined ? undefined : this.target(ref.file, from);
          const r = file === undefined ? undefined : this.exported(file, name);
          if (r) out.push(r);
          continue;
        }
        const r = this.local(ref.file, name);
        if (r && key(r) !== key(ref)) out.push(r);
      }
    }
    return out;
  }
}

/**
 * The package's declarations reachable from the entry's exports that the entry does not export,
 * each with the first declaration found to mention it.
 */
export function unexportedTypes(root: string, entry = 'index.d.ts'): { name: string; file: string; usedBy: string }[] {
  const decls = new Declarations(root);
  const open = [...decls.exportsOf(entry).values()];
  const exported = new Set(open.map(key));
  const seen = new Set(exported);
  const missing: { name: string; file: string; usedBy: string }[] = [];
  while (open.length > 0) {
    const ref = open.shift()!;
    for (const r of decls.mentions(ref)) {
      if (seen.has(key(r))) continue;
      seen.add(key(r));
      if (!exported.has(key(r))) missing.push({ ...r, usedBy: ref.name });
      open.push(r);
    }
  }
  return missing;
}
