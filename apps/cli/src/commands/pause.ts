/** `vmctl pause NAME`: POST /v1/domains/{name}/actions/pause. */
import { actionCommand } from './action.js';

export const pauseCommand = () => actionCommand('pause', 'Pause a domain: its vCPUs stop, memory and devices stay');
