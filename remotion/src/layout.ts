// Geometry shared with the ffmpeg renderer (shared/media/render.py), computed the same way.

/** Python's round(): halves go to the even neighbour. */
export const roundHalfEven = (value: number): number => {
	const floor = Math.floor(value);
	const diff = value - floor;
	if (diff > 0.5) return floor + 1;
	if (diff < 0.5) return floor;
	return floor % 2 === 0 ? floor : floor + 1;
};

/** render.py:even: the nearest even integer >= 2. */
export const even = (value: number): number => Math.max(2, roundHalfEven(value / 2) * 2);

export type Box = {x: number; y: number; width: number; height: number};

/** render.py:person_box: a `scale` share of the frame, bottom-centre, sides multiples of 4. */
export const personBox = (width: number, height: number, scale: number): Box => {
	if (scale >= 1) return {x: 0, y: 0, width, height};
	const side = (length: number) => Math.max(4, Math.min(length, roundHalfEven((length * scale) / 4) * 4));
	const boxW = side(width);
	const boxH = side(height);
	return {x: Math.floor((width - boxW) / 2), y: height - boxH, width: boxW, height: boxH};
};

export type Drift = {scale: number; pan_x: number; pan_y: number};

/**
 * render.py:_background_chain: the still enlarged to even(size * scale), and a frame-sized window
 * sliding across its margin from (-pan) to (+pan) over the whole video. Returns the still's size and
 * its offset (negative: the window's top-left inside it) at `progress` (0..1 of the video).
 */
export const driftPlacement = (
	width: number,
	height: number,
	motion: Drift | null,
	progress: number,
): {width: number; height: number; left: number; top: number} => {
	if (motion === null || motion.scale <= 1) return {width, height, left: 0, top: 0};
	const bigW = even(width * motion.scale);
	const bigH = even(height * motion.scale);
	const x = ((bigW - width) / 2) * (1 + motion.pan_x * (2 * progress - 1));
	const y = ((bigH - height) / 2) * (1 + motion.pan_y * (2 * progress - 1));
	return {width: bigW, height: bigH, left: -x, top: -y};
};

/**
 * The opacity of a text card at `t` seconds: ffmpeg's `fade=alpha=1` in over fade_in from start, out over
 * fade_out before end; shown while start <= t <= end (the overlay's enable=between).
 */
export const textOpacity = (
	t: number,
	text: {start: number; end: number; fade_in: number; fade_out: number},
): number => {
	if (t < text.start || t > text.end) return 0;
	const fadeIn = text.fade_in > 0 ? Math.min(1, (t - text.start) / text.fade_in) : 1;
	const fadeOut = text.fade_out > 0 ? Math.min(1, (text.end - t) / text.fade_out) : 1;
	return Math.max(0, Math.min(fadeIn, fadeOut));
};
