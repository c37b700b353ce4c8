/**
 * Every import of a set of TypeScript files, parsed with the compiler API (not a regex): static
 * imports and re-exports, `import type` / all-`type` specifier lists / `import("…")` types as
 * type-only, dynamic `import()` as its own kind, `import x = require()`; plus every use of the
 * global `Buffer` identifier. test/unit/architecture.test.ts judges the layers with it.
 */
import { builtinModules } from 'node:module';
import path from 'node:path';
import ts from 'typescript';

export type ImportKind = 'value' | 'type' | 'dynamic';

export interface ImportEdge {
  /** Repo-relative path of the importing file, e.g. `sdk/core/cluster.ts`. */
  from: string;
  line: number;
  spec: string;
  kind: ImportKind;
  /** Repo-relative .ts file a relative spec resolves to (undefined for packages and built-ins). */
  to?: string;
}

export interface FileScan {
  imports: ImportEdge[];
  /** Lines on which the global `Buffer` is used (not a property name, not a local binding). */
  bufferLines: number[];
}

const BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')).map((m) => m.replace(/^node:/, '')));

/** `node:x`, or a bare name (or subpath, `fs/promises`) of a Node built-in. */
export function isNodeBuiltin(spec: string): boolean {
  if (spec.startsWith('node:')) return true;
  return BUILTINS.has(spec) || BUILTINS.has(spec.split('/')[0]!);
}

/** The repo-relative .ts file a relative spec names, given the set of files that exist. */
export function resolveSpec(from: string, spec: string, exists: (file: string) => boolean): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  for (const c of [base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base, `${base}.ts`, `${base}/index.ts`]) if (exists(c)) return c;
  return base;
}

export function scanFile(file: string, text: string, exists: (file: string) => boolean): FileScan {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const imports: ImportEdge[] = [];
  const bufferLines: number[] = [];
  const lineOf = (n: ts.Node) => sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1;
  const add = (n: ts.Node, spec: string, kind: ImportKind) => imports.push({ from: file, line: lineOf(n), spec, kind, to: resolveSpec(file, spec, exists) });
  // Every use of the name Buffer counts, local bindings included: in sdk/core nothing is called
  // Buffer, so no binding can hide the global (a parameter named Buffer once hid the whole file).
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const c = n.importClause;
      let typeOnly = !!c?.isTypeOnly;
      if (c && !c.isTypeOnly && !c.name && c.namedBindings && ts.isNamedImports(c.namedBindings)) {
        const els = c.namedBindings.elements;
        typeOnly = els.length > 0 && els.every((e) => e.isTypeOnly);
      }
      add(n, n.moduleSpecifier.text, typeOnly ? 'type' : 'value');
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      let typeOnly = n.isTypeOnly;
      if (!typeOnly && n.exportClause && ts.isNamedExports(n.exportClause)) {
        const els = n.exportClause.elements;
        typeOnly = els.length > 0 && els.every((e) => e.isTypeOnly);
      }
      add(n, n.moduleSpecifier.text, typeOnly ? 'type' : 'value');
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference) && ts.isStringLiteral(n.moduleReference.expression)) {
      add(n, n.moduleReference.expression.text, n.isTypeOnly ? 'type' : 'value');
    } else if (ts.isCallExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'require') {
      const a = n.arguments[0];
      add(n, a && ts.isStringLiteralLike(a) ? a.text : `<computed: ${a?.getText(sf) ?? ''}>`, 'value');
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const a = n.arguments[0];
      add(n, a && ts.isStringLiteralLike(a) ? a.text : `<computed: ${a?.getText(sf) ?? ''}>`, 'dynamic');
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      add(n, n.argument.literal.text, 'type');
    } else if (ts.isIdentifier(n) && n.text === 'Buffer') {
      const p = n.parent;
      const global = (e: ts.Expression) => ts.isIdentifier(e) && ['globalThis', 'global', 'window', 'self'].includes(e.text);
      const isName =
        (ts.isPropertyAccessExpression(p) && p.name === n && !global(p.expression)) ||
        (ts.isQualifiedName(p) && p.right === n) ||
        ((ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p) || ts.isPropertySignature(p) || ts.isMethodDeclaration(p) || ts.isMethodSignature(p)) && p.name === n);
      if (!isName) bufferLines.push(lineOf(n));
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return { imports, bufferLines };
}

/** The strongly connected components (more than one file, or a file importing itself) of a graph. */
export function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || graph.get(v)?.has(v)) out.push(c.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) strong(v);
  return out;
}

/** One shortest path from `start` back to itself inside `members` (to print a cycle readably). */
export function cyclePath(graph: Map<string, Set<string>>, members: string[]): string[] {
  const inside = new Set(members);
  const start = members[0]!;
  const prev = new Map<string, string>();
  const queue = [start];
  while (queue.length) {
    const v = queue.shift()!;
    for (const w of graph.get(v) ?? []) {
      if (!inside.has(w)) continue;
      if (w === start) {
        const p = [v];
        while (p[0] !== start) p.unshift(prev.get(p[0]!)!);
        return [...p, start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return members;
}
