// Render stills of PremiumTalkingVideo locally: node scripts/render-stills.cjs JOB.json
// JOB: {"props": {...}, "frames": [0, 15], "publicDir": "/abs/dir", "outDir": "/abs/dir", "scale": 1,
//       "browserExecutable": "/usr/bin/chromium"}. Assets in props are URLs relative to the bundle
// ("public/<file>": the files of publicDir). Writes outDir/frame-<n>.png.
const path = require('node:path');
const fs = require('node:fs');
const {bundle} = require('@remotion/bundler');
const {selectComposition, renderStill, openBrowser} = require('@remotion/renderer');

const main = async () => {
	const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
	const serveUrl = await bundle({
		entryPoint: path.join(__dirname, '..', 'src', 'index.ts'),
		publicDir: job.publicDir,
		outDir: path.join(job.outDir, 'bundle'),
	});
	const browser = await openBrowser('chrome', {browserExecutable: job.browserExecutable || null});
	try {
		const composition = await selectComposition({
			serveUrl, id: 'PremiumTalkingVideo', inputProps: job.props, puppeteerInstance: browser,
		});
		for (const frame of job.frames) {
			await renderStill({
				composition, serveUrl, frame, inputProps: job.props, puppeteerInstance: browser,
				output: path.join(job.outDir, `frame-${frame}.png`), imageFormat: 'png', scale: job.scale || 1,
			});
		}
	} finally {
		await browser.close({silent: true});
	}
};

main().catch((error) => {
	console.error(error);
	process.exit(1);
});
