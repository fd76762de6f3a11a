import pytest

import zoo
import zoo.plugins
from zoo import registry
from zoo.errors import RegistrationError, UnknownName


class Plugin:
    def __init__(self, *specs):
        self.specs = specs

    @zoo.hookimpl
    def zoo_register_models(self, register):
        for s in self.specs:
            register(s)


@pytest.fixture
def register(monkeypatch):
    monkeypatch.setenv("ZOO_LOAD_PLUGINS", "")  # only the throwaway plugins of each test
    zoo.plugins.reset()
    pm = zoo.get_plugin_manager()
    names = []

    def add(name, *specs):
        pm.register_plugin(Plugin(*specs), name)
        names.append(name)
        registry.reset()

    yield add
    for n in names:
        pm.unregister_plugin(n)
    registry.reset()


def spec(arch, tags=(), aliases=(), **kw):
    return zoo.ModelSpec(arch=arch, factory="x:y", aliases=aliases,
                         weights=tuple(zoo.WeightsCfg(tag=t, embedded=e) for t, e in tags), **kw)


def test_names_tags_aliases_and_provenance(register):
    register("p1", spec("alpha", [("one", None), ("two", "pkg:w/two")], aliases=("al",)))
    r = registry.resolve_model("alpha")
    assert r.name == "alpha.two" and r.plugin == "p1"  # the first tag WITH weights is the default
    assert registry.resolve_model("alpha.one").weights.tag == "one"
    assert registry.resolve_model("al").spec.arch == "alpha"
    assert zoo.list_models("alp*") == ["alpha.one", "alpha.two"]
    assert zoo.list_models("al") == ["alpha.one", "alpha.two"]
    assert zoo.list_models("alpha", pretrained=True) == ["alpha.two"]


def test_duplicate_names_name_both_plugins(register):
    register("first", spec("alpha"))
    register("second", spec("beta", aliases=("alpha",)))
    with pytest.raises(RegistrationError) as err:
        registry.models.entries
    assert "'first'" in str(err.value) and "'second'" in str(err.value)


def test_unknown_names_suggest(register):
    register("p1", spec("stylegan"), spec("splitvae", aliases=("svae",)))
    with pytest.raises(UnknownName, match="did you mean 'stylegan'"):
        registry.resolve_model("stylegam")
    with pytest.raises(UnknownName, match="no weights tag 'nope'"):
        registry.resolve_model("stylegan.nope")
    with pytest.raises(UnknownName, match="looks like a path"):
        zoo.parse_ref("some/dir")  # names are told from weights sources once, when parsed


def test_bad_specs_are_refused():
    with pytest.raises(ValueError):
        zoo.ModelSpec(arch="Bad.Name", factory="x:y")
    with pytest.raises(ValueError):
        zoo.WeightsCfg(tag="Not Ok")
    with pytest.raises(ValueError):
        zoo.LatentSpec((4,), space="q")
    with pytest.raises(ValueError):
        zoo.ModelSpec(arch="a", factory="x:y", weights=(zoo.WeightsCfg("t"), zoo.WeightsCfg("t")))


def test_wrong_spec_type_is_a_registration_error(register):
    register("weird", "not a spec")
    with pytest.raises(RegistrationError, match="'weird'"):
        registry.models.entries


def test_specs_are_torch_free_and_roundtrip():
    img = zoo.ImageSpec(3, (64, 64), dataset="faces64")
    lat = zoo.LatentSpec((512,), space="w", prior=None)
    assert zoo.ImageSpec.from_dict(img.to_dict()) == img
    assert zoo.LatentSpec.from_dict(lat.to_dict()) == lat and lat.dim == 512
