"""readlit: READ (real-time diffusion talking heads) as a Lightning + Hydra framework."""

from readlit.resolvers import register as _register_resolvers

_register_resolvers()
