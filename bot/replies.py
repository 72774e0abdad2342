"""Answers that may be long: a message when they fit, a document when they do not."""

from aiogram.types import BufferedInputFile, Message

from bot import texts


async def answer_text(message: Message, plain: str, *, filename: str, caption: str) -> None:
    """Send plain text (escaped for HTML) or, past Telegram's comfortable length, a document."""
    if len(plain) <= texts.MAX_MESSAGE:
        await message.answer(texts.esc(plain))
        return
    document = BufferedInputFile(plain.encode(), filename=filename)
    await message.answer_document(document, caption=texts.esc(caption))


def int_arg(raw: str | None) -> int | None:
    """A positive database id from a command's argument, or None."""
    text = (raw or "").strip().lstrip("#")
    if not text.isdigit() or len(text) > 9:
        return None
    value = int(text)
    return value if value > 0 else None
