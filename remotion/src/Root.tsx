import React from 'react';
import {Composition, type CalculateMetadataFunction} from 'remotion';
import example from './example-spec.json';
import {PremiumTalkingVideo} from './PremiumTalkingVideo';
import {premiumTalkingVideoSchema, type PremiumTalkingVideoProps} from './schema';

// Size, frame rate and length come from the spec, so one composition serves every video.
const calculateMetadata: CalculateMetadataFunction<PremiumTalkingVideoProps> = ({props}) => ({
	width: props.spec.width,
	height: props.spec.height,
	fps: props.spec.fps,
	durationInFrames: props.spec.frames,
});

const defaultProps = premiumTalkingVideoSchema.parse({spec: example, assets: {}, person_video: null});

export const RemotionRoot: React.FC = () => (
	<Composition
		id="PremiumTalkingVideo"
		component={PremiumTalkingVideo}
		schema={premiumTalkingVideoSchema}
		defaultProps={defaultProps}
		calculateMetadata={calculateMetadata}
		width={example.width}
		height={example.height}
		fps={example.fps}
		durationInFrames={example.frames}
	/>
);
