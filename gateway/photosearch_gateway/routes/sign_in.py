"""The page's sign-in with the identity provider: an authorization code redeemed for the
bearer token a contributor writes with (oidc_sign_in.py)."""

from fastapi import APIRouter, Request

from photosearch_gateway.auth import check_rate
from photosearch_gateway.oidc_sign_in import redeem
from photosearch_gateway.routes import errors
from photosearch_gateway.schemas import SignedIn, TokenExchange

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/token", response_model=SignedIn, responses=errors(401, 409, 429))
async def redeem_code(body: TokenExchange, request: Request) -> SignedIn:
    """Redeem the code the identity provider sent the page back with (PKCE): the gateway
    asks the provider's token endpoint, checks the token it gets like any bearer token, and
    hands it to the page. Counts against the address's write limit."""
    gw = request.app.state.gateway
    check_rate(request, gw, "write_address")
    signed = await redeem(gw, body.code, body.code_verifier, body.redirect_uri)
    return SignedIn(
        access_token=signed.access_token,
        expires_in=signed.expires_in,
        name=signed.name,
        roles=signed.roles,
    )
