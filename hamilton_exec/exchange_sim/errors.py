"""Binance error payloads (``{"code": ..., "msg": ...}``) with the HTTP status Binance sends."""

from dataclasses import dataclass
from typing import Final

INTERNAL_ERROR: Final = "Internal error; unable to process your request. Please try again."


@dataclass
class SimError(Exception):
    """A refusal the venue answers with ``{"code": code, "msg": msg}`` and ``status``."""

    code: int
    msg: str
    status: int = 400

    def __str__(self) -> str:
        return f"{self.status} {self.code} {self.msg}"

    def payload(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def invalid_symbol() -> SimError:
    return SimError(-1121, "Invalid symbol.")


def mandatory(name: str) -> SimError:
    return SimError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def illegal(name: str, legal: str) -> SimError:
    return SimError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def filter_failure(name: str) -> SimError:
    return SimError(-1013, f"Filter failure: {name}")


def insufficient_balance() -> SimError:
    return SimError(-2010, "Account has insufficient balance for requested action.")


def order_not_found() -> SimError:
    return SimError(-2013, "Order does not exist.")


def unknown_order() -> SimError:
    return SimError(-2011, "Unknown order sent.")


def duplicate_order(futures: bool) -> SimError:
    if futures:
        return SimError(-4116, "ClientOrderId is duplicated.")
    return SimError(-2010, "Duplicate order sent.")


def would_take(futures: bool) -> SimError:
    if futures:
        return SimError(
            -5022,
            "Due to the order could not be executed as maker, the Post Only order will be "
            "rejected.",
        )
    return SimError(-2010, "Order would immediately match and take.")


def fok_rejected() -> SimError:
    return SimError(
        -5021, "Due to the order could not be filled immediately, the FOK order has been rejected."
    )


def reduce_only_rejected() -> SimError:
    return SimError(-2022, "ReduceOnly Order is rejected.")


def margin_insufficient() -> SimError:
    return SimError(-2019, "Margin is insufficient.")


def internal(status: int = 503) -> SimError:
    return SimError(-1001, INTERNAL_ERROR, status)
