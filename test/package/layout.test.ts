/**
 * The source layout stays untangled: no module of lib/ or protocols/ reaches
 * itself through its imports (type-only imports count: they are how the old
 * server/transfer cycle began), and the TFTP code declares each type name once.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseCircular, parseDependencyTree } from 'dpdm';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('source layout', () => {
  it('has no import cycle in lib/ or protocols/, type-only imports included', async () => {
    const tree = await parseDependencyTree(['lib/**/*.ts', 'protocols/**/*.ts'], { context: root, transform: false, skipDynamicImports: false });
    expect(Object.keys(tree).length).toBeGreaterThan(100);
    expect(parseCircular(tree)).toEqual([]);
  });

  it('declares each type, interface, class and enum name once across the TFTP code', async () => {
    const tree = await parseDependencyTree(['lib/tftp/**/*.ts', 'protocols/tftp/**/*.ts'], { context: root, transform: false });
    const files = Object.keys(tree).filter((f) => /^(lib|protocols)\/tftp\//.test(f));
    expect(files.length).toBeGreaterThan(20);
    const where = new Map<string, string[]>();
    for (const file of files) {
      const sf = ts.createSourceFile(file, readFileSync(root + file, 'utf8'), ts.ScriptTarget.Latest);
      for (const s of sf.statements) {
        if (ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s) || ts.isClassDeclaration(s) || ts.isEnumDeclaration(s)) {
          const name = s.name?.text;
          if (name) where.set(name, [...(where.get(name) ?? []), file]);
        }
      }
    }
    const twice = [...where].filter(([, fs]) => fs.length > 1).map(([name, fs]) => `${name}: ${fs.join(', ')}`);
    expect(twice).toEqual([]);
  });
});
