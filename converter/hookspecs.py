"""The hook contract. A plugin implements one or both hooks; each receives a ``register`` callable.

    from converter import Format, hookimpl

    @hookimpl
    def register_formats(register):
        register(Format(name="toml", extensions=(".toml",), reader=read_toml))

Plugins are found through the ``converter`` entry-point group (see ``converter.registry``).
"""

import pluggy

hookspec = pluggy.HookspecMarker("converter")


@hookspec
def register_formats(register):
    """Register file formats.

    Called once per plugin manager, for every plugin, when the registry is first needed.
    Call ``register(Format(...))`` once for each format the plugin provides (see
    ``converter.registry.Format`` for the fields). Return value: ignored.
    """


@hookspec
def register_codecs(register):
    """Register value codecs: how a key-value store's bytes become Python values and back.

    Call ``register(Codec(...))`` once for each codec (see ``converter.registry.Codec``).
    Return value: ignored.
    """
