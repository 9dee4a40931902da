"""``loremaster export-for`` and ``tokens``: a stored conversation as a provider sees it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import click
import orjson

from ..errors import ValidationFailed
from ..manager import ContextManager
from ..models import Message, ProviderType
from ..translation import ContextTranslator
from . import _render
from ._app import Options, cli, common_options
from ._files import payload_output_option, write_file
from ._translate import _PROVIDERS

__all__ = ["TokenReport", "export_for", "tokens"]


@cli.command("export-for")
@common_options
@click.argument("context_id")
@click.option("--to", "provider", type=_PROVIDERS, required=True, help="the provider's format")
@click.option("--model", default=None, help="the target model (window, features)")
@click.option("--branch", default="main", show_default=True, help="the conversation on this branch")
@payload_output_option
def export_for(
    options: Options,
    context_id: str,
    provider: str,
    model: str | None,
    branch: str,
    output: Path | None,
) -> None:
    """Print a stored conversation as a provider's request body fragment, fitted to the
    model's window; the context is not changed (`loremaster migrate` changes it)."""
    target = ProviderType(provider)
    payload = options.run(
        lambda cm: cm.export_for_provider(context_id, target, options.user_id, model, branch=branch)
    )
    if output is None:
        _render.print_json(payload)
        return
    write_file(output, orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
    written = {"provider": target.value, "model": model, "output": str(output)}
    options.show(
        written,
        lambda _: _render.error_console.print(
            f"wrote the {target.value} payload to {output}", markup=False, soft_wrap=True
        ),
    )


@dataclass(frozen=True)
class TokenReport:
    """A conversation's tokens for a model, and what fitting it to the window would cut."""

    context_id: str
    branch: str
    provider: str
    model: str
    known_model: bool
    exact: bool
    messages: int
    tokens: int
    context_window: int
    reserve_output: int
    budget: int
    fits: bool
    cut_messages: list[int]
    """The ``seq`` of each message fitting would remove, oldest first."""
    tokens_after_fit: int


def _provider(
    translator: ContextTranslator, given: str | None, model: str | None, primary: object
) -> ProviderType:
    """--provider, else the provider of --model, else the conversation's own."""
    if given is not None:
        return ProviderType(given)
    owner = None if model is None else translator.registry.provider_of(model)
    if owner is not None:
        return owner
    if isinstance(primary, ProviderType):
        return primary
    raise ValidationFailed("give --provider: the conversation has no primary_provider")


def _count(
    translator: ContextTranslator,
    messages: list[Message],
    provider: ProviderType,
    model: str | None,
) -> tuple[int, bool, int, list[int], int]:
    """(tokens, exact, budget, seqs fitting would cut, tokens after fitting)."""
    if not messages:
        info = translator.model(provider, model)
        return 0, True, info.context_window - info.max_output, [], 0
    count = translator.count_tokens(messages, provider, model)
    fitted = translator.fit_to_window(messages, provider, model)
    cut = [message.seq or 0 for message in fitted.removed]
    return count.total, count.exact, fitted.budget, cut, fitted.tokens


@cli.command()
@common_options
@click.argument("context_id")
@click.option("--model", default=None, help="the model (default: the provider's default)")
@click.option(
    "--provider", type=_PROVIDERS, default=None, help="default: --model's, else the primary"
)
@click.option("--branch", default="main", show_default=True, help="the conversation on this branch")
def tokens(
    options: Options, context_id: str, model: str | None, provider: str | None, branch: str
) -> None:
    """Count a conversation's tokens for a model and say what fitting it to the model's
    window would cut (nothing is changed)."""

    async def work(cm: ContextManager) -> TokenReport:
        context = await cm.get_context(context_id, options.user_id, branch=branch)
        messages: list[Message] = list(getattr(context, "messages", []))
        translator = ContextTranslator(cm.settings)
        target = _provider(translator, provider, model, getattr(context, "primary_provider", None))
        info = translator.model(target, model)
        total, exact, budget, cut, after = _count(translator, messages, target, model)
        return TokenReport(
            context_id=context.context_id,
            branch=branch,
            provider=target.value,
            model=model if model is not None and not info.known else info.name,
            known_model=info.known,
            exact=exact,
            messages=len(messages),
            tokens=total,
            context_window=info.context_window,
            reserve_output=info.max_output,
            budget=budget,
            fits=total <= budget,
            cut_messages=cut,
            tokens_after_fit=after,
        )

    report = options.run(work)
    if options.as_json:
        _render.print_json(asdict(report))
    else:
        _show_tokens(report)


def _spans(seqs: list[int]) -> str:
    """``#2-#5, #8``: message numbers, runs joined."""
    runs: list[list[int]] = []
    for seq in seqs:
        if runs and seq == runs[-1][-1] + 1:
            runs[-1].append(seq)
        else:
            runs.append([seq])
    return ", ".join(f"#{r[0]}" if len(r) == 1 else f"#{r[0]}-#{r[-1]}" for r in runs)


def _show_tokens(report: TokenReport) -> None:
    estimate = "exactly" if report.exact else "about"
    unknown = "" if report.known_model else " (a model loremaster does not know: defaults)"
    lines = [
        f"{_render.plural(report.messages, 'message')}: {estimate} "
        f"{report.tokens:,} tokens for {report.provider} {report.model}{unknown}",
        f"window {report.context_window:,} tokens: {report.reserve_output:,} kept for the "
        f"answer, {report.budget:,} for the conversation",
    ]
    if not report.cut_messages:
        lines.append("it fits: fitting would cut nothing")
    else:
        cut = _render.plural(len(report.cut_messages), "message")
        lines.append(
            f"fitting would cut {cut} ({_spans(report.cut_messages)}), leaving "
            f"{report.tokens_after_fit:,} tokens"
        )
    if report.tokens_after_fit > report.budget:
        lines.append("even then it does not fit: the system prompt and newest turn are too long")
    for line in lines:
        _render.console.print(line, markup=False, highlight=False, soft_wrap=True)
