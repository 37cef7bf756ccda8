// States of the shared frame buffers that carry out[:, -1] from the inference worker to the encoder
// (an Int32Array over a SharedArrayBuffer, changed with Atomics by both threads).
export const FRAME_FREE = 0;
export const FRAME_BUSY = 1;
