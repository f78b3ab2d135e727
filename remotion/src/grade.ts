/**
 * The grade presets of shared/media/render.py (GRADES, grade_filter) as an SVG feColorMatrix.
 *
 * ffmpeg's lutyuv works on limited-range BT.601 Y'CbCr: Y' = (Y-128)*contrast + 128 + brightness,
 * U,V = (C-128)*saturation + 128 + shift. Without its clip() that map is affine in Y'CbCr, and so affine
 * in R'G'B' too: here it is conjugated with the BT.601 conversion into one 4x5 colour matrix, applied in
 * sRGB (color-interpolation-filters="sRGB"), which is what ffmpeg's RGB->YUV->RGB path does. It is an
 * approximation: ffmpeg clips Y' to 16..235 and chroma to 16..240 and works on 8-bit, 4:2:0-subsampled
 * chroma, the browser on full-resolution RGB, so saturated colours and the extremes differ by a few levels.
 */

export const GRADES: Record<string, [number, number, number, number]> = {
	none: [1.0, 0.0, 1.0, 0.0],
	warm: [1.04, 2.0, 1.08, 5.0],
	cool: [1.05, 0.0, 0.95, -5.0],
	cinematic: [1.12, -4.0, 0.9, 3.0],
	luxury: [1.1, -3.0, 0.92, 4.0],
	fresh: [1.03, 4.0, 1.1, -2.0],
	soft: [0.94, 4.0, 0.92, 1.0],
};

type Affine = {m: number[][]; b: number[]}; // v' = m v + b, 3x3 and 3

const apply = (outer: Affine, inner: Affine): Affine => ({
	m: outer.m.map((row) => [0, 1, 2].map((j) => row.reduce((sum, value, k) => sum + value * inner.m[k][j], 0))),
	b: outer.m.map((row, i) => row.reduce((sum, value, k) => sum + value * inner.b[k], 0) + outer.b[i]),
});

// R'G'B' in 0..1 -> Y'CbCr in 8-bit levels (limited range, BT.601), and back.
const KR = 0.299;
const KB = 0.114;
const KG = 1 - KR - KB;
const TO_YUV: Affine = {
	m: [
		[219 * KR, 219 * KG, 219 * KB],
		[(-224 * KR) / (2 * (1 - KB)), (-224 * KG) / (2 * (1 - KB)), 224 / 2],
		[224 / 2, (-224 * KG) / (2 * (1 - KR)), (-224 * KB) / (2 * (1 - KR))],
	],
	b: [16, 128, 128],
};

const invert = ({m, b}: Affine): Affine => {
	const [[a, bb, c], [d, e, f], [g, h, i]] = m;
	const det = a * (e * i - f * h) - bb * (d * i - f * g) + c * (d * h - e * g);
	const inv = [
		[(e * i - f * h) / det, (c * h - bb * i) / det, (bb * f - c * e) / det],
		[(f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det],
		[(d * h - e * g) / det, (bb * g - a * h) / det, (a * e - bb * d) / det],
	];
	return {m: inv, b: inv.map((row) => -row.reduce((sum, value, k) => sum + value * b[k], 0))};
};

/** render.py:grade_filter's numbers: (contrast, brightness, saturation, du, dv) after intensity. */
export const gradeNumbers = (
	grade: string,
	intensity: number,
	chromaShift: [number, number] = [0, 0],
): [number, number, number, number, number] => {
	const [contrast, brightness, saturation, warmth] = GRADES[grade];
	const k = grade !== 'none' ? intensity : 0;
	const w = warmth * k;
	return [1 + (contrast - 1) * k, brightness * k, 1 + (saturation - 1) * k, -w * 0.6 + chromaShift[0], w + chromaShift[1]];
};

/** The feColorMatrix `values` (20 numbers) for a grade, or null when it changes nothing. */
export const gradeMatrix = (grade: string, intensity: number, chromaShift: [number, number] = [0, 0]): string | null => {
	const [contrast, brightness, saturation, du, dv] = gradeNumbers(grade, intensity, chromaShift);
	if (contrast === 1 && brightness === 0 && saturation === 1 && du === 0 && dv === 0) return null;
	const lut: Affine = {
		m: [
			[contrast, 0, 0],
			[0, saturation, 0],
			[0, 0, saturation],
		],
		b: [128 - 128 * contrast + brightness, 128 - 128 * saturation + du, 128 - 128 * saturation + dv],
	};
	const total = apply(invert(TO_YUV), apply(lut, TO_YUV));
	const rows = total.m.map((row, i) => [...row, 0, total.b[i]]);
	return [...rows, [0, 0, 0, 1, 0]].flat().map((value) => value.toFixed(6)).join(' ');
};
