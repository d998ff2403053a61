/** `vmm run`'s exit statuses (see cli.ts). */
export const EXIT_POWEROFF = 0;
export const EXIT_RESET = 124;
export const EXIT_VMM_ERROR = 125;
export const EXIT_GUEST_CRASHED = 126;
export const EXIT_STOPPED = 130;
