/**
 * PremiumTalkingVideo: draws a CompositionSpec as the ffmpeg renderer (shared/media/render.py) does.
 *
 * Layers bottom to top: the background still drifting over the whole video, the person (a WebM with
 * alpha of the person's box, pulled toward the background's colour), the overlays at their opacity,
 * the text cards with their fades; the grade over everything. Every object key of the spec is fetched
 * from `assets[key]`.
 *
 * The person layer: Python encodes the upload, fitted into the person's box, with the matte and the
 * feathered edges as its alpha plane, into one VP9 WebM (yuva420p) for the whole video
 * (shared/providers/remotion.py). <OffthreadVideo transparent> has Remotion's compositor decode it
 * with its alpha, frame-exact, so the browser never composites a video with a separate mask.
 */
import React from 'react';
import {AbsoluteFill, Audio, Img, OffthreadVideo, useCurrentFrame} from 'remotion';
import {gradeMatrix} from './grade';
import {driftPlacement, personBox, textOpacity} from './layout';
import type {PremiumTalkingVideoProps} from './schema';

const ColorMatrix: React.FC<{id: string; values: string}> = ({id, values}) => (
	<svg width={0} height={0} style={{position: 'absolute'}} aria-hidden>
		<filter id={id} colorInterpolationFilters="sRGB" x="0" y="0" width="100%" height="100%">
			<feColorMatrix type="matrix" values={values} />
		</filter>
	</svg>
);

export const PremiumTalkingVideo: React.FC<PremiumTalkingVideoProps> = ({
	spec,
	assets,
	person_video,
	person_chroma_shift,
	audio,
}) => {
	const frame = useCurrentFrame();
	const t = frame / spec.fps;
	const url = (key: string): string => {
		const found = assets[key];
		if (found === undefined) {
			throw new Error(`No URL for the object key ${key}: pass it in the "assets" prop (object key -> URL).`);
		}
		return found;
	};
	const {width, height} = spec;
	const drift = driftPlacement(width, height, spec.background.motion, frame / spec.frames);
	const box = personBox(width, height, spec.person.scale);
	const match = spec.person.color_match;
	const personMatrix = gradeMatrix('none', 0, [person_chroma_shift[0] * match, person_chroma_shift[1] * match]);
	const grade = gradeMatrix(spec.effects.grade, spec.effects.intensity);
	const source = spec.person.source_key;

	return (
		<AbsoluteFill style={{backgroundColor: 'black', overflow: 'hidden'}}>
			{grade ? <ColorMatrix id="vidluxe-grade" values={grade} /> : null}
			{personMatrix ? <ColorMatrix id="vidluxe-person" values={personMatrix} /> : null}
			<AbsoluteFill style={{filter: grade ? 'url(#vidluxe-grade)' : undefined}}>
				<Img
					src={url(spec.background.key)}
					style={{position: 'absolute', left: drift.left, top: drift.top, width: drift.width, height: drift.height}}
				/>
				{person_video ? (
					<OffthreadVideo
						src={person_video}
						transparent
						muted
						style={{
							position: 'absolute',
							left: box.x,
							top: box.y,
							width: box.width,
							height: box.height,
							filter: personMatrix ? 'url(#vidluxe-person)' : undefined,
						}}
					/>
				) : null}
				{spec.overlays.map((overlay, i) => (
					<Img
						key={`o${i}`}
						src={url(overlay.key)}
						style={{position: 'absolute', left: 0, top: 0, width, height, opacity: overlay.opacity}}
					/>
				))}
				{spec.texts.map((text, i) => {
					const opacity = textOpacity(t, text);
					return opacity > 0 ? (
						<Img key={`t${i}`} src={url(text.key)} style={{position: 'absolute', left: 0, top: text.y, opacity}} />
					) : null;
				})}
			</AbsoluteFill>
			{audio && spec.person.media.has_audio && assets[source] ? <Audio src={assets[source]} /> : null}
		</AbsoluteFill>
	);
};
