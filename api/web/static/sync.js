// One play / pause / seek control for every video of a job. A wall clock leads; each video
// plays natively and is pulled back when it drifts, so their currentTime stays together. A
// shorter video holds its last frame until the longest one ends, then all start again.
const TOLERANCE = 0.06; // seconds of drift before a video is re-seeked (under two frames at 25 fps)
const STEPS = 1000; // the seek slider's resolution
const END_SLACK = 0.02; // seconds: this close to its end a video is held, not played (it would end first)

function usable(video) {
  return Number.isFinite(video.duration) && video.duration > 0;
}

function clock(seconds) {
  return `${seconds.toFixed(2)} s`;
}

export class SyncedPlayback {
  constructor(button, slider, readout) {
    Object.assign(this, { button, slider, readout });
    this.videos = [];
    this.playing = false;
    this.position = 0;
    this.startedAt = 0;
    button.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    slider.addEventListener("input", () => this.seek((Number(slider.value) / STEPS) * this.duration));
  }

  /** Drive these videos from now on (their own controls and loops are turned off). */
  use(videos) {
    this.pause();
    this.videos = videos;
    for (const video of videos) {
      video.controls = false;
      video.loop = false;
      video.autoplay = false;
      video.muted = true;
      video.addEventListener("loadedmetadata", () => this.show());
    }
    this.seek(0);
  }

  get duration() {
    return Math.max(0, ...this.videos.filter(usable).map((v) => v.duration));
  }

  play() {
    if (!this.videos.length) return;
    if (this.position >= this.duration) this.position = 0;
    this.playing = true;
    this.startedAt = performance.now() / 1000 - this.position;
    this.align(true);
    this.show();
    requestAnimationFrame(() => this.tick());
  }

  pause() {
    this.playing = false;
    for (const video of this.videos) video.pause();
    this.seek(this.position);
  }

  seek(seconds) {
    this.position = Math.max(0, seconds);
    this.startedAt = performance.now() / 1000 - this.position;
    for (const video of this.videos) {
      if (usable(video)) video.currentTime = Math.min(this.position, video.duration);
    }
    this.show();
  }

  tick() {
    if (!this.playing) return;
    const duration = this.duration;
    this.position = performance.now() / 1000 - this.startedAt;
    if (duration && this.position >= duration) this.seek(0); // the longest ended: all again
    this.align(false);
    this.show();
    requestAnimationFrame(() => this.tick());
  }

  // Each video where the clock says: playing inside its length, held at its end past it.
  align(force) {
    for (const video of this.videos) {
      if (!usable(video)) continue;
      if (this.position >= video.duration - END_SLACK) {
        if (!video.paused) video.pause();
        if (Math.abs(video.currentTime - video.duration) > TOLERANCE) video.currentTime = video.duration;
        continue;
      }
      // an ended video would play again from 0: put it where the clock is first
      if (force || video.ended || Math.abs(video.currentTime - this.position) > TOLERANCE) {
        video.currentTime = this.position;
      }
      if (video.paused) video.play().catch(() => {});
    }
  }

  show() {
    const duration = this.duration;
    this.button.textContent = this.playing ? "Pause" : "Play";
    this.slider.value = String(duration ? Math.round((STEPS * this.position) / duration) : 0);
    this.slider.dataset.position = String(this.position); // the exact clock, for tests and tools
    this.slider.setAttribute("aria-valuetext", `${clock(this.position)} of ${clock(duration)}`);
    this.readout.textContent = `${clock(Math.min(this.position, duration))} / ${clock(duration)}`;
  }
}
