/**
 * The public API of the built `peerlb/sdk` and `peerlb/agent` entries, as lines to snapshot:
 *  - runtimeExports(): the sorted export names of dist/<entry>/index.js (what `import` sees);
 *  - declarationSurface(): one line per exported symbol's member, read with the TypeScript compiler
 *    API from dist/<entry>/index.d.ts and resolved through re-exports: class constructors, static and
 *    instance members (inherited ones included, so a class whose base changes from Node's
 *    EventEmitter to sdk/core/emitter.ts's Emitter compares equal where the method signatures match),
 *    interface/object-type properties, function signatures, variable types, type-alias text, enum
 *    members. Heritage clauses are not listed: the surface is what a caller can call. Signatures
 *    are written without parameter names (`opt T` for an optional parameter, `...T` for a rest).
 * Lines are path-independent: `import("…").` qualifiers are dropped, so moving an internal file
 * does not change a line.
 *
 * Used by test/unit/api/api.test.ts, and run by hand to write the snapshots:
 *   npx vite-node test/support/write-api-snapshots.ts -- <repo root with a built dist/> <out dir>
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export const ENTRIES = ['sdk', 'agent'] as const;
export type Entry = (typeof ENTRIES)[number];

export async function runtimeExports(root: string, entry: Entry): Promise<string[]> {
  const mod = (await import(path.join(root, 'dist', entry, 'index.js'))) as Record<string, unknown>;
  return Object.keys(mod).sort().map((name) => `${entry} ${name}: ${kindOf(mod[name])}`);
}

function kindOf(v: unknown): string {
  if (typeof v === 'function') return /^class[\s{]/.test(Function.prototype.toString.call(v)) ? 'class' : 'function';
  return v === null ? 'null' : typeof v;
}

const FLAGS =
  ts.TypeFormatFlags.NoTruncation |
  ts.TypeFormatFlags.WriteArrowStyleSignature |
  ts.TypeFormatFlags.UseSingleQuotesForStringLiteralType |
  ts.TypeFormatFlags.WriteTypeArgumentsOfSignature;

/** Drop file-path qualifiers and normalise whitespace, so a line does not depend on where a file lives. */
function clean(s: string): string {
  return s
    .replace(/import\((["'])[^"']*\1(?:,[^)]*)?\)\./g, '')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/[^\n]*/g, '')
    .replace(/\s+/g, ' ')
    .replace(/;\s*}/g, ' }')
    .trim();
}

export function declarationSurface(root: string, entry: Entry): string[] {
  const file = path.join(root, 'dist', entry, 'index.d.ts');
  const program = ts.createProgram([file], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: ['node'],
    typeRoots: [path.join(root, 'node_modules', '@types')],
    skipLibCheck: true,
    strict: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  if (!source) throw new Error(`no ${file}: run npm run build`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (!moduleSymbol) throw new Error(`${file} is not a module`);
  const out = new Set<string>();
  const typeText = (t: ts.Type, at?: ts.Node) => clean(checker.typeToString(t, at, FLAGS | ts.TypeFormatFlags.InTypeAlias));
  // A signature without its parameter names (they document, they are not the API): type
  // parameters with their constraints, each parameter's type (`?` optional, `...` rest), the return.
  const sigText = (s: ts.Signature, at?: ts.Node) => {
    const tps = (s.getTypeParameters() ?? []).map((tp) => {
      const c = tp.getConstraint();
      const d = tp.getDefault();
      return `${typeText(tp)}${c ? ` extends ${typeText(c, at)}` : ''}${d ? ` = ${typeText(d, at)}` : ''}`;
    });
    const params = s.getParameters().map((p) => {
      const d = p.valueDeclaration as ts.ParameterDeclaration | undefined;
      const rest = d?.dotDotDotToken ? '...' : '';
      const optional = d && (d.questionToken || d.initializer) ? '?' : '';
      return `${rest}${optional ? 'opt ' : ''}${typeText(checker.getTypeOfSymbolAtLocation(p, d ?? at!), d ?? at)}`;
    });
    return clean(`${tps.length ? `<${tps.join(', ')}>` : ''}(${params.join(', ')}) => ${typeText(s.getReturnType(), at)}`);
  };

  const memberLines = (prefix: string, owner: ts.Type, at: ts.Node, statics = false) => {
    for (const prop of checker.getPropertiesOfType(owner)) {
      const name = checker.symbolToString(prop);
      const decl = prop.valueDeclaration ?? prop.declarations?.[0];
      // Statics a class inherits from the runtime (Error.captureStackTrace, EventEmitter.once…)
      // are the runtime's, not peerlb's: listed are the statics peerlb's own files declare.
      if (statics && (name === 'prototype' || !decl || /[\\/]node_modules[\\/]/.test(decl.getSourceFile().fileName))) continue;
      const t = checker.getTypeOfSymbolAtLocation(prop, decl ?? at);
      const optional = prop.flags & ts.SymbolFlags.Optional ? '?' : '';
      const mods = decl ? ts.getCombinedModifierFlags(decl as ts.Declaration) : 0;
      const ro = mods & ts.ModifierFlags.Readonly || (decl && ts.isGetAccessor(decl) && !prop.declarations?.some(ts.isSetAccessor)) ? 'readonly ' : '';
      if (mods & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) continue;
      if (name.startsWith('#')) continue;
      const calls = t.getCallSignatures();
      if (prop.flags & ts.SymbolFlags.Method && calls.length > 0) {
        for (const s of calls) out.add(`${prefix}${name}${optional}${sigText(s, decl)}`);
      } else {
        out.add(`${prefix}${ro}${name}${optional}: ${typeText(t, decl)}`);
      }
    }
  };

  const exports = checker.getExportsOfModule(moduleSymbol).sort((a, b) => a.name.localeCompare(b.name));
  for (const exp of exports) {
    const name = exp.name;
    const sym = exp.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exp) : exp;
    const decls = sym.declarations ?? [];
    const head = `${entry} ${name}`;
    for (const decl of decls) {
      if (ts.isClassDeclaration(decl)) {
        const typeParams = decl.typeParameters ? `<${decl.typeParameters.map((p) => clean(p.getText())).join(', ')}>` : '';
        out.add(`${head}: class${typeParams}${decl.modifiers?.some((m) => m.kind === ts.SyntaxKind.AbstractKeyword) ? ' abstract' : ''}`);
        const statics = checker.getTypeOfSymbolAtLocation(sym, decl);
        for (const s of statics.getConstructSignatures()) out.add(`${head} new${sigText(s, decl)}`);
        memberLines(`${head}.`, statics, decl, true);
        memberLines(`${head}#`, checker.getDeclaredTypeOfSymbol(sym), decl);
      } else if (ts.isInterfaceDeclaration(decl)) {
        const typeParams = decl.typeParameters ? `<${decl.typeParameters.map((p) => clean(p.getText())).join(', ')}>` : '';
        out.add(`${head}: interface${typeParams}`);
        const t = checker.getDeclaredTypeOfSymbol(sym);
        memberLines(`${head}#`, t, decl);
        for (const s of t.getCallSignatures()) out.add(`${head}#call${sigText(s, decl)}`);
        for (const s of t.getConstructSignatures()) out.add(`${head}#new${sigText(s, decl)}`);
        const index = checker.getIndexInfosOfType(t);
        for (const i of index) out.add(`${head}#[${typeText(i.keyType)}]: ${typeText(i.type)}`);
      } else if (ts.isTypeAliasDeclaration(decl)) {
        const t = checker.getDeclaredTypeOfSymbol(sym);
        const typeParams = decl.typeParameters ? `<${decl.typeParameters.map((p) => clean(p.getText())).join(', ')}>` : '';
        out.add(`${head}: type${typeParams} = ${typeText(t, decl)}`);
        if (t.flags & ts.TypeFlags.Object && !(t.flags & ts.TypeFlags.Union)) memberLines(`${head}#`, t, decl);
      } else if (ts.isFunctionDeclaration(decl)) {
        const s = checker.getSignatureFromDeclaration(decl);
        if (s) out.add(`${head}${sigText(s, decl)}`);
      } else if (ts.isVariableDeclaration(decl)) {
        const ro = ts.getCombinedNodeFlags(decl) & ts.NodeFlags.Const ? 'const' : 'let';
        out.add(`${head}: ${ro} ${typeText(checker.getTypeOfSymbolAtLocation(sym, decl), decl)}`);
      } else if (ts.isEnumDeclaration(decl)) {
        out.add(`${head}: enum`);
        for (const m of decl.members) out.add(`${head}.${clean(m.getText())}`);
      } else if (ts.isModuleDeclaration(decl)) {
        out.add(`${head}: namespace`);
      } else {
        out.add(`${head}: ${ts.SyntaxKind[decl.kind]} ${clean(decl.getText())}`);
      }
    }
  }
  return [...out].sort();
}

/** Write `<out>/<entry>-exports.txt` and `<out>/<entry>-surface.txt` for the built tree at `root`. */
export async function writeSnapshots(root: string, outDir: string): Promise<void> {
  fs.mkdirSync(outDir, { recursive: true });
  for (const entry of ENTRIES) {
    fs.writeFileSync(path.join(outDir, `${entry}-exports.txt`), (await runtimeExports(root, entry)).join('\n') + '\n');
    fs.writeFileSync(path.join(outDir, `${entry}-surface.txt`), declarationSurface(root, entry).join('\n') + '\n');
  }
}
