// The entry point Remotion bundles (locally with @remotion/bundler, or `remotion lambda sites create`).
import {registerRoot} from 'remotion';
import {RemotionRoot} from './Root';

registerRoot(RemotionRoot);
