/** `vmctl resume NAME`: POST /v1/domains/{name}/actions/resume. */
import { actionCommand } from './action.js';

export const resumeCommand = () => actionCommand('resume', 'Resume a paused domain');
