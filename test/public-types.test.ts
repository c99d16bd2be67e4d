/**
 * The published type surface: every type a public signature mentions is exported itself (users
 * must be able to name what they pass and get back), and the .d.ts files compile with
 * skipLibCheck off (with @types/node, which the README says TypeScript users need).
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ts from 'typescript';

const root = path.resolve(__dirname, '..');
const entry = path.join(root, 'dist', 'index.d.ts');
const dist = path.join(root, 'dist') + path.sep;

test('every type used in a public signature is exported from the package', () => {
  const program = ts.createProgram([entry], { strict: true, skipLibCheck: true, types: ['node'] });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(entry)!;
  const resolve = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
  const exported = new Set(checker.getExportsOfModule(checker.getSymbolAtLocation(source)!).map(resolve));
  const missing = new Map<string, string>();
  const seen = new Set<ts.Symbol>();
  const visitSymbol = (sym: ts.Symbol, from: string) => {
    if (seen.has(sym)) return;
    seen.add(sym);
    for (const decl of sym.declarations ?? []) visit(decl, from);
  };
  const visit = (node: ts.Node, from: string): void => {
    if (ts.isTypeReferenceNode(node) || ts.isExpressionWithTypeArguments(node) || ts.isTypeQueryNode(node)) {
      const name = ts.isTypeReferenceNode(node) ? node.typeName : ts.isTypeQueryNode(node) ? node.exprName : node.expression;
      const at = checker.getSymbolAtLocation(name);
      const sym = at && resolve(at);
      const decl = sym?.declarations?.[0];
      if (sym && decl && decl.getSourceFile().fileName.startsWith(dist) && !(sym.flags & ts.SymbolFlags.TypeParameter)) {
        if (!exported.has(sym)) missing.set(sym.name, from);
        visitSymbol(sym, `${from} -> ${sym.name}`);
      }
    }
    // Private members carry no type in a .d.ts, and module-internal statements are not API.
    if (ts.isPropertyDeclaration(node) && node.modifiers?.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword)) return;
    ts.forEachChild(node, (c) => visit(c, from));
  };
  for (const sym of exported) visitSymbol(sym, sym.name);
  assert.equal(
    [...missing].map(([name, from]) => `${name} (used by ${from})`),
    [],
    'types used in public signatures but not exported',
  );
});

test('the .d.ts files compile with skipLibCheck: false', () => {
  const program = ts.createProgram([entry], { strict: true, skipLibCheck: false, noEmit: true, types: ['node'] });
  const errors = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  assert.equal(errors, []);
});

test.run();
