"""One action for one caller: authorise, run the handler, audit. The path every request
takes once its caller is known, whether it came signed over RPC (api.app) or from a user
signed in to the web console (web.console): one set of rules, not two."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from dwsched.api import audit, registry
from dwsched.api.access import Authorizer, Caller
from dwsched.api.context import Context, Handler
from dwsched.api.errors import API_VERSION, status_and_code
from dwsched.api.params import Params
from dwsched.clock import Clock
from dwsched.domain.errors import DwschedError, Forbidden
from dwsched.store import Store

log = logging.getLogger("dwsched.api")


@dataclass(frozen=True, slots=True)
class Who:
    """The request's principal: the AccessKey that signed it, or (`user_id`) a console
    user, whose `access_key_id` is only the label its audit records carry."""

    access_key_id: str
    user_id: int | None = None


class Calls:
    def __init__(self, store: Store, clock: Clock, default_timezone: str) -> None:
        self.store = store
        self.clock = clock
        self.default_timezone = default_timezone
        self.authorizer = Authorizer(store)

    def authorize(
        self, who: Who, action: str, params: dict[str, str], source: str, secure: bool, now_ms: int
    ) -> Caller:
        if who.user_id is not None:
            return self.authorizer.authorize_user(
                who.user_id, action, params, source, secure, now_ms
            )
        return self.authorizer.authorize(who.access_key_id, action, params, source, secure, now_ms)

    def run(
        self,
        handler: Handler,
        action: str,
        params: dict[str, str],
        who: Who,
        source: str,
        secure: bool,
        request_id: str,
        now_ms: int,
        authorised_as: tuple[str, ...] = (),
        audited: bool | None = None,
    ) -> dict[str, Any]:
        """The handler's answer, if `who` may make the request; an audited action is
        recorded whether it succeeds or fails. `authorised_as`: the actions whose permission
        the call needs, when not its own (a console view showing what they show).
        `audited`: whether the call is recorded; None: as api.registry declares `action`."""
        if audited is None:
            audited = registry.lookup(action, API_VERSION).audited
        caller = None
        try:
            for other in authorised_as[1:]:
                self.authorize(who, other, params, source, secure, now_ms)
            first = authorised_as[0] if authorised_as else action
            caller = self.authorize(who, first, params, source, secure, now_ms)
            ctx = Context(
                self.store, request_id, who.access_key_id, now_ms, self.default_timezone, caller
            )
            result = handler(ctx, Params(params))
        except DwschedError as error:
            if audited:
                self.record(caller, who.access_key_id, action, params, error, request_id, source)
            raise
        if audited:
            # Ids that did not exist when a tenant administrator's request was authorised
            # may have been created before its handler acted on them: the audit record
            # names the workspaces actually touched. (The action is done: a failure here is
            # logged, not the client's problem.)
            try:
                caller = self.authorizer.touched(caller, action, result)
            except Exception:
                log.exception("audit_workspaces_failed request_id=%s action=%s", request_id, action)
            self.record(caller, who.access_key_id, action, params, result, request_id, source)
        return result

    def record(
        self,
        caller: Caller | None,
        access_key_id: str,
        action: str,
        params: dict[str, str],
        outcome: dict[str, Any] | DwschedError,
        request_id: str,
        source: str,
        user_name: str | None = None,
    ) -> None:
        """Record an audited request (its failure too) in the audit log; a failure to
        record is logged, not the client's problem. `user_name`: who, when no caller was
        established (a request refused before authorisation)."""
        failed = isinstance(outcome, DwschedError)
        result = (
            status_and_code(outcome)[1]
            if isinstance(outcome, DwschedError)
            else audit.result_of(outcome)
        )
        user = caller.name if caller is not None and caller.user_id is not None else access_key_id
        user = user_name or user
        workspaces = caller.workspaces if caller is not None else frozenset()
        if isinstance(outcome, Forbidden):  # denied before a caller was established
            user = outcome.detail.get("AuthPrincipalDisplayName") or user
            workspaces = outcome.workspaces
        try:
            with self.store.write() as tx:
                tx.audit.record(
                    audit.entry(
                        now_ms=self.clock.now_ms(),
                        user=user,
                        access_key_id=access_key_id,
                        action=action,
                        params=params,
                        result=result,
                        request_id=request_id,
                        source=source,
                        answer=None if failed else outcome,  # type: ignore[arg-type]
                        workspaces=workspaces,
                    )
                )
        except Exception:
            log.exception("audit_failed request_id=%s action=%s", request_id, action)
