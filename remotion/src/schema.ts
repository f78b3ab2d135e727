/**
 * The props schema of PremiumTalkingVideo: a zod mirror of the pydantic CompositionSpec
 * (shared/composition.py, with the media models of shared/media/models.py).
 *
 * Field names are the pydantic ones (snake_case), because the props are `spec.model_dump(mode="json")`
 * as Python sends it. Models with `extra="forbid"` are strict objects here. tests/remotion checks this
 * schema against the pydantic JSON Schema (names, types, required-ness, enums, bounds, defaults), so a
 * field added on one side only fails the test suite.
 */
import {z} from 'zod';

export const driftSchema = z.strictObject({
	scale: z.number().min(1).max(1.5).default(1.06),
	pan_x: z.number().min(-1).max(1).default(0.6),
	pan_y: z.number().min(-1).max(1).default(-0.3),
});

export const backgroundLayerSchema = z.strictObject({
	key: z.string(), // still image, at least the output size
	motion: driftSchema.nullable().default({scale: 1.06, pan_x: 0.6, pan_y: -0.3}),
});

export const videoStreamInfoSchema = z.object({
	index: z.int(),
	codec: z.string(),
	profile: z.string().nullable().default(null),
	width: z.int(),
	height: z.int(),
	rotation: z.int().default(0),
	sample_aspect_ratio: z.number().default(1),
	display_width: z.int(),
	display_height: z.int(),
	avg_frame_rate: z.number().nullable().default(null),
	r_frame_rate: z.number().nullable().default(null),
	is_variable_frame_rate: z.boolean().default(false),
	pix_fmt: z.string().nullable().default(null),
	frame_count: z.int().nullable().default(null),
	bit_rate: z.int().nullable().default(null),
	duration_seconds: z.number().nullable().default(null),
});

export const audioStreamInfoSchema = z.object({
	index: z.int(),
	codec: z.string(),
	sample_rate: z.int(),
	channels: z.int(),
	bit_rate: z.int().nullable().default(null),
});

export const mediaInfoSchema = z.object({
	path: z.string(),
	container_format: z.string(),
	duration_seconds: z.number(),
	size_bytes: z.int(),
	bit_rate: z.int().nullable().default(null),
	video: videoStreamInfoSchema.nullable().default(null),
	audio: audioStreamInfoSchema.nullable().default(null),
	has_audio: z.boolean(), // a computed field: present in what Python sends
});

export const decodeHintsSchema = z.object({
	x264_build: z.int().min(0).nullable().default(null),
});

export const chunkSchema = z.object({
	index: z.int().min(0),
	start_frame: z.int().min(0),
	frames: z.int().min(1),
});

export const personLayerSchema = z.strictObject({
	source_key: z.string(),
	media: mediaInfoSchema,
	hints: decodeHintsSchema.default({x264_build: null}),
	scale: z.number().gt(0.2).max(1).default(0.88),
	color_match: z.number().min(0).max(1).default(0.25),
});

export const overlayLayerSchema = z.strictObject({
	key: z.string(),
	opacity: z.number().min(0).max(1).default(1),
});

export const textLayerSchema = z
	.strictObject({
		key: z.string(),
		start: z.number().min(0),
		end: z.number(),
		y: z.int().min(0),
		fade_in: z.number().min(0).default(0.5),
		fade_out: z.number().min(0).default(0.5),
	})
	.refine((text) => text.end > text.start, {message: 'a text layer must end after it starts'});

export const GRADE_PRESETS = ['none', 'warm', 'cool', 'cinematic', 'luxury', 'fresh', 'soft'] as const;

export const effectsSchema = z.strictObject({
	grade: z.enum(GRADE_PRESETS).default('none'),
	intensity: z.number().min(0).max(1).default(0.6),
});

export const compositionSpecSchema = z.strictObject({
	version: z.literal(1).default(1),
	width: z.int().min(16),
	height: z.int().min(16),
	fps: z.int().min(1).max(120),
	frames: z.int().min(1),
	chunks: z.array(chunkSchema).min(1),
	background: backgroundLayerSchema,
	person: personLayerSchema,
	overlays: z.array(overlayLayerSchema).default([]),
	texts: z.array(textLayerSchema).default([]),
	effects: effectsSchema.default({grade: 'none', intensity: 0.6}),
});

/**
 * What the renderer needs beside the spec: where the browser fetches each object key the spec names,
 * and the person layer, prepared by Python as one WebM (VP9 with an alpha plane) of the person's box
 * for the whole video (shared/providers/remotion.py).
 */
export const premiumTalkingVideoSchema = z.object({
	spec: compositionSpecSchema,
	assets: z.record(z.string(), z.string()), // object key -> URL (presigned on AWS, staticFile() locally)
	person_video: z.string().nullable(), // URL of the person layer; null draws no person (tests)
	person_chroma_shift: z.tuple([z.number(), z.number()]).default([0, 0]), // (U, V) levels, before color_match
	audio: z.boolean().default(true), // play the upload's audio (assets[spec.person.source_key])
});

export type CompositionSpec = z.infer<typeof compositionSpecSchema>;
export type PremiumTalkingVideoProps = z.infer<typeof premiumTalkingVideoSchema>;
