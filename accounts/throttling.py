from rest_framework.throttling import BaseThrottle

from accounts import ratelimit


class AddressThrottle(BaseThrottle):
    """A limit per client address (REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES proxies)."""

    scope = ""

    def allow_request(self, request, view) -> bool:
        try:
            ratelimit.take(self.scope, self.get_ident(request))
        except ratelimit.RateLimited as exc:
            self.retry_after = exc.retry_after
            return False
        return True

    def wait(self) -> int:
        return self.retry_after


class RegisterThrottle(AddressThrottle):
    scope = "register"


class LoginThrottle(AddressThrottle):
    scope = "login"
