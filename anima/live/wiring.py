"""Builds a :class:`~anima.live.show.LiveShow` from settings: avatar renderer, overlays, outputs."""

from __future__ import annotations

from pathlib import Path

from anima.config import Settings
from anima.live.comments import CommentQueue, Moderate
from anima.live.outputs import (
    EncoderConfig,
    Output,
    OutputHub,
    RtmpOutput,
    hls_output,
    mp4_output,
)
from anima.live.overlay import Compositor, read_image
from anima.live.show import LiveShow, Responder
from anima.media import video_codec
from anima.pipeline import Clock
from anima.render.animator import FaceAnimator
from anima.render.avatar import Avatar
from anima.tts import Voice


def canvas_size(settings: Settings) -> tuple[int, int]:
    """Output width and height (the render size unless the live settings say otherwise)."""
    live, size = settings.live, settings.render.size
    width, height = live.width or size, live.height or size
    if width % 2 or height % 2:
        raise ValueError(f"the canvas must have even sides for H.264, not {width}x{height}")
    return width, height


def encoder_config(settings: Settings, *, live: bool) -> EncoderConfig:
    """Bitrate-limited for streams; constant quality when only files are written."""
    width, height = canvas_size(settings)
    lv = settings.live
    return EncoderConfig(
        width,
        height,
        settings.render.fps,
        video_bitrate=lv.video_bitrate if live else None,
        crf=settings.render.crf,
        keyframe_interval=lv.keyframe_interval,
        preset=lv.preset,
        audio_bitrate=lv.audio_bitrate,
        zerolatency=live,
        watermark=settings.render.watermark,
        codec=video_codec(settings.render.encoder, settings.render.device),
    )


def make_compositor(settings: Settings) -> Compositor:
    """Overlays from the live settings (images are read here, so bad files fail early)."""
    lv = settings.live
    width, height = canvas_size(settings)
    return Compositor(
        width,
        height,
        background=read_image(lv.background, alpha=False) if lv.background else None,
        logo=read_image(lv.logo, alpha=True) if lv.logo else None,
        label=lv.label_text if lv.ai_label else None,
        subtitles=lv.subtitles,
    )


def make_outputs(
    settings: Settings,
    *,
    rtmp: str | None = None,
    hls: Path | None = None,
    mp4: Path | None = None,
    live: bool = True,
) -> list[Output]:
    """The requested outputs; at least one is required."""
    lv = settings.live
    outputs: list[Output] = []
    if rtmp:
        outputs.append(
            RtmpOutput(
                rtmp,
                retry_initial=lv.retry_initial,
                retry_max=lv.retry_max,
                timeout=lv.rtmp_timeout,
            )
        )
    if hls is not None:
        outputs.append(
            hls_output(hls, segment=lv.hls_segment, list_size=lv.hls_list_size, live=live)
        )
    if mp4 is not None:
        if mp4.suffix.lower() not in {".mp4", ".m4v", ".mov"}:
            raise ValueError(f"the recording must be an .mp4 file, not {mp4.name}")
        outputs.append(mp4_output(mp4, live=live))
    if not outputs:
        raise ValueError("no output: give --rtmp URL, --hls FOLDER and/or -o FILE.mp4")
    return outputs


def make_comments(settings: Settings, moderate: Moderate | None = None) -> CommentQueue:
    """The comment queue with the live settings' limits."""
    lv = settings.live
    return CommentQueue(
        maxsize=lv.comment_queue,
        answers_per_minute=lv.answers_per_minute,
        user_cooldown=lv.comment_user_cooldown,
        max_chars=lv.comment_max_chars,
        moderate=moderate,
    )


def build_show(
    settings: Settings,
    avatar: Avatar,
    voice: Voice,
    outputs: list[Output],
    *,
    realtime: bool,
    clock: Clock | None = None,
    responder: Responder | None = None,
    moderate: Moderate | None = None,
) -> tuple[LiveShow, OutputHub]:
    """A show ready to :meth:`~anima.live.show.LiveShow.run`, and the hub to close after it."""
    r = settings.render
    compositor = make_compositor(settings)
    animator = FaceAnimator.from_settings(avatar, r)
    hub = OutputHub(encoder_config(settings, live=realtime), outputs)
    show = LiveShow(
        voice,
        animator.render,
        hub,
        fps=r.fps,
        clock=clock,
        realtime=realtime,
        compositor=compositor,
        comments=make_comments(settings, moderate),
        responder=responder,
        preroll=settings.live.preroll,
        max_chars=settings.limits.max_text_chars,
    )
    return show, hub


def comment_responder(settings: Settings):
    """The brain answering comments, and its safety check for moderating them."""
    from anima.dialogue.agent import build_agent
    from anima.dialogue.safety import InputModerator, detect_injection

    agent = build_agent(settings, session_id="live")
    moderator = InputModerator(
        settings.safety.blocked_input, settings.safety.blocked_input_patterns
    )

    def moderate(text: str) -> str | None:
        return moderator.check(text) or detect_injection(text)

    def respond(comment):
        return agent.respond(comment.text, user_id=f"live:{comment.user}")

    return agent, respond, moderate
