"""Errors that name a problem with the user's input; the CLI and the service show their text."""


class DyngenError(Exception):
    """Base of every error caused by bad input rather than a bug."""

    code = "invalid_input"


class VideoError(DyngenError):
    """A file that isn't a readable video, or has too few or too small frames."""

    code = "invalid_video"


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
