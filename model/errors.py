"""Errors that name a problem with the user's input; the CLI and the service show their text."""


class DyngenError(Exception):
    """Base of every error caused by bad input rather than a bug."""

    code = "invalid_input"


class VideoError(DyngenError):
    """A file that isn't a readable video, or has too few or too small frames."""

    code = "invalid_video"


class VideoTooLong(VideoError):
    """A video with more frames than the caller accepts (`frames` None: counting stopped)."""

    code = "video_too_long"

    def __init__(self, message: str, *, frames: int | None, limit: int) -> None:
        super().__init__(message)
        self.frames, self.limit = frames, limit


class VideoTooLarge(VideoError):
    """A video whose frames are wider or taller than the caller accepts."""

    code = "video_too_large"

    def __init__(self, message: str, *, width: int, height: int, limit: int) -> None:
        super().__init__(message)
        self.width, self.height, self.limit = width, height, limit


class VideoTooCostly(VideoError):
    """A video whose decoding would pass the caller's bound on decoded pixels or wall time."""

    code = "video_too_costly"

    def __init__(self, message: str, *, bound: str, limit: float, reached: float) -> None:
        super().__init__(message)
        self.bound, self.limit, self.reached = bound, limit, reached


class MaskError(DyngenError):
    """A mask that can't be read or doesn't fit the training video."""

    code = "invalid_mask"


class CheckpointError(DyngenError):
    """A checkpoint that isn't ours, is damaged, or comes from another format version."""

    code = "invalid_checkpoint"


class TrainingDiverged(DyngenError):
    """The loss became NaN or infinite."""

    code = "training_diverged"


class Cancelled(Exception):
    """A run stopped early because its caller asked it to."""
