// Print the JSON Schema of the CompositionSpec zod schema (src/schema.ts, or the file named by argv[2]).
// zod 4 (the version Remotion 4.0.529 pins) writes JSON Schema itself: z.toJSONSchema replaces the
// zod-to-json-schema package, which only reads zod 3 schemas. esbuild (a dependency of
// @remotion/bundler) turns the TypeScript into a module node can load.
const path = require('node:path');
const esbuild = require('esbuild');

const entry = path.resolve(process.argv[2] || path.join(__dirname, '..', 'src', 'schema.ts'));
const built = esbuild.buildSync({
	entryPoints: [entry],
	bundle: true,
	platform: 'node',
	format: 'cjs',
	write: false,
	external: ['zod'], // one zod instance: the schema's and the one that exports it
	nodePaths: (process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean),
	logLevel: 'error',
});
const mod = {exports: {}};
new Function('module', 'exports', 'require', built.outputFiles[0].text)(mod, mod.exports, require);
const {z} = require('zod');
const schema = z.toJSONSchema(mod.exports.compositionSpecSchema, {io: 'input', unrepresentable: 'any'});
process.stdout.write(JSON.stringify(schema, null, 1) + '\n');
