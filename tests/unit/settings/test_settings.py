"""QueueSettings: env names, nested overrides that merge, provider config over env, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from queue_manager import QueueConfigurationError, QueueSettings
from queue_manager.settings import DEFAULT_CONNECTIONS, load_settings


def test_defaults_are_the_five_connections_named_after_their_drivers(clean_env: pytest.MonkeyPatch) -> None:
    settings = QueueSettings()
    assert settings.driver == "redis"
    assert sorted(settings.connections) == sorted(DEFAULT_CONNECTIONS)
    for name, connection in settings.connections.items():
        assert connection.driver == name
        assert connection.queue == "default"
        assert connection.result_backend is True
    assert settings.connections["redis"].url_value == "redis://127.0.0.1:6379/0"
    assert settings.connections["redis_stream"].url_value == "redis://127.0.0.1:6379/0"
    assert settings.connections["rabbitmq"].url_value == "amqp://guest:guest@127.0.0.1:5672/"
    assert settings.connections["nats"].url_value == "nats://127.0.0.1:4222"
    assert settings.connections["memory"].url is None


def test_queue_connection_is_an_alias_and_queue_driver_wins(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QUEUE_CONNECTION", "nats")
    assert QueueSettings().driver == "nats"
    clean_env.setenv("QUEUE_DRIVER", "rabbitmq")
    assert QueueSettings().driver == "rabbitmq"


def test_seed_redis_variables_build_the_url(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_HOST", "cache.internal")
    clean_env.setenv("REDIS_PORT", "6380")
    clean_env.setenv("REDIS_PASSWORD", "p@ss/word")
    clean_env.setenv("REDIS_DB", "3")
    url = QueueSettings().connections["redis"].url_value
    assert url == "redis://:p%40ss%2Fword@cache.internal:6380/3"
    clean_env.setenv("REDIS_URL", "redis://elsewhere:6390/1")
    assert QueueSettings().connections["redis_stream"].url_value == "redis://elsewhere:6390/1"


def test_broker_url_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RABBITMQ_URL", "amqp://u:p@rabbit:5673/vh")
    clean_env.setenv("NATS_URL", "nats://nats.internal:4223")
    settings = QueueSettings()
    assert settings.connections["rabbitmq"].url_value == "amqp://u:p@rabbit:5673/vh"
    assert settings.connections["nats"].url_value == "nats://nats.internal:4223"


def test_one_nested_env_field_merges_into_the_defaults(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QUEUE_CONNECTIONS__REDIS__URL", "redis://other:6379/2")
    settings = QueueSettings()
    redis = settings.connections["redis"]
    assert redis.url_value == "redis://other:6379/2"
    assert redis.driver == "redis" and redis.queue == "default" and redis.result_backend is True
    assert sorted(settings.connections) == sorted(DEFAULT_CONNECTIONS)
    assert settings.connections["redis_stream"].url_value == "redis://127.0.0.1:6379/0"


def test_nested_options_merge_and_new_connections_get_driver_defaults(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QUEUE_CONNECTIONS__NATS__OPTIONS__ACK_WAIT", "90")
    clean_env.setenv("QUEUE_CONNECTIONS__TENANT_B__DRIVER", "rabbitmq")
    clean_env.setenv("QUEUE_CONNECTIONS__TENANT_B__QUEUE", "tenant-b")
    settings = QueueSettings()
    assert settings.connections["nats"].options == {"ack_wait": "90"}
    tenant = settings.connections["tenant_b"]
    assert (tenant.driver, tenant.queue) == ("rabbitmq", "tenant-b")
    assert tenant.url_value == "amqp://guest:guest@127.0.0.1:5672/"


def test_provider_config_overrides_env_and_merges(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QUEUE_DRIVER", "nats")
    clean_env.setenv("QUEUE_CONNECTIONS__REDIS__QUEUE", "from-env")
    settings = load_settings({"driver": "memory", "connections": {"redis": {"url": "redis://cfg:6379/0"}}})
    assert settings.driver == "memory"
    assert settings.connections["redis"].url_value == "redis://cfg:6379/0"
    assert settings.connections["redis"].queue == "from-env"


def test_a_settings_subclass_is_used_as_given(clean_env: pytest.MonkeyPatch) -> None:
    class QueueConfig(QueueSettings):
        driver: str = "memory"

    assert load_settings(QueueConfig()).driver == "memory"
    clean_env.setenv("QUEUE_DRIVER", "nats")
    assert load_settings(QueueConfig()).driver == "nats", "env still wins over a subclass's defaults"


def test_invalid_settings_fail_with_one_message_and_no_secret(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QUEUE_CONNECTIONS__REDIS__URL", "redis://:hunter2@127.0.0.1:6379/0")
    clean_env.setenv("QUEUE_CONNECTIONS__REDIS__QUEUE", "has space")
    clean_env.setenv("QUEUE_CONNECTIONS__REDIS__RESULT_BACKEND", "sometimes")
    with pytest.raises(QueueConfigurationError) as caught:
        QueueSettings()
    message = str(caught.value)
    assert "connections.redis.queue" in message
    assert "connections.redis.result_backend" in message
    assert "hunter2" not in message


def test_unknown_top_level_field_is_an_error(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(QueueConfigurationError, match="defualt"):
        load_settings({"defualt": "redis"})


def test_bad_redis_port_is_named(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_PORT", "six-three-seven-nine")
    with pytest.raises(QueueConfigurationError, match="REDIS_PORT"):
        QueueSettings()


def test_worker_variables_do_not_count_as_settings(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QUEUE_APP", "bootstrap.application:app")
    clean_env.setenv("QUEUE_WORKER_CONNECTION", "redis")
    assert QueueSettings().driver == "redis"


def test_repr_masks_passwords(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RABBITMQ_URL", "amqp://admin:s3cr3t@rabbit:5672/")
    clean_env.setenv("REDIS_PASSWORD", "hunter2")
    settings = QueueSettings()
    text = repr(settings) + str(settings) + repr(settings.connections["rabbitmq"])
    assert "s3cr3t" not in text and "hunter2" not in text
    assert "amqp://admin:***@rabbit:5672/" in text


def test_config_of_the_wrong_type_is_named(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(QueueConfigurationError, match="list"):
        load_settings(["redis"])


def test_env_names_are_case_insensitive_and_json_values_parse(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("queue_connections__Reports__driver", "redis")
    clean_env.setenv("QUEUE_CONNECTIONS__REPORTS__OPTIONS", '{"result_ttl": 60}')
    clean_env.setenv("QUEUE_CONNECTIONS__REPORTS__OPTIONS__MAX_CONNECTIONS", "7")
    reports = QueueSettings().connections["reports"]
    assert reports.driver == "redis"
    assert reports.options == {"result_ttl": 60, "max_connections": "7"}


def test_env_json_that_does_not_parse_is_named(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QUEUE_CONNECTIONS__REDIS__OPTIONS", '{"result_ttl": 60,}')
    with pytest.raises(QueueConfigurationError, match="QUEUE_CONNECTIONS__REDIS__OPTIONS must hold JSON"):
        QueueSettings()


def test_custom_driver_path_from_env(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("QUEUE_DRIVERS__LOCAL", "drivers.memory:build")
    from drivers import memory

    assert QueueSettings().drivers == {"local": memory.build}


def test_queue_settings_is_a_pydantic_settings_class() -> None:
    from pydantic_settings import BaseSettings

    assert issubclass(QueueSettings, BaseSettings)


def test_a_subclass_with_its_own_env_prefix_reads_its_own_variables(clean_env: pytest.MonkeyPatch) -> None:
    from pydantic_settings import SettingsConfigDict

    from queue_manager import QueueManager

    class MyQueue(QueueSettings):
        model_config = SettingsConfigDict(env_prefix="JOBS_", env_nested_delimiter="__")

    clean_env.setenv("JOBS_DRIVER", "nats")
    clean_env.setenv("JOBS_CONNECTIONS__NATS__QUEUE", "jobs")
    clean_env.setenv("QUEUE_DRIVER", "rabbitmq")  # not this class's prefix: ignored
    manager = QueueManager(MyQueue())
    assert manager.get_default_driver() == "nats"
    nats = manager.settings.connections["nats"]
    assert (nats.queue, nats.driver, nats.url_value) == ("jobs", "nats", "nats://127.0.0.1:4222")
    assert sorted(manager.connection_names) == sorted(DEFAULT_CONNECTIONS), "the other defaults stay"
    clean_env.delenv("JOBS_DRIVER")
    clean_env.setenv("JOBS_CONNECTION", "memory")
    assert MyQueue().driver == "memory", "the QUEUE_CONNECTION alias follows the prefix too"


def test_a_subclass_reads_an_env_file_and_a_secrets_dir(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pydantic_settings import SettingsConfigDict

    env_file = tmp_path / "queue.env"
    env_file.write_text(
        "QUEUE_DRIVER=emails\n"
        "QUEUE_CONNECTIONS__EMAILS__DRIVER=rabbitmq\n"
        "QUEUE_CONNECTIONS__EMAILS__QUEUE=emails\n"
        "QUEUE_CONNECTIONS__REDIS__OPTIONS__RESULT_TTL=60\n"
        "QUEUE_APP=bootstrap.application:app\n"  # the worker's variable, not a setting: ignored
    )
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "queue_connections").write_text('{"nats": {"url": "nats://:t0ken@nats.internal:4222"}}')

    class FileQueue(QueueSettings):
        model_config = SettingsConfigDict(env_file=env_file, secrets_dir=secrets)

    settings = FileQueue()
    assert settings.driver == "emails"
    emails = settings.connections["emails"]
    assert (emails.driver, emails.queue) == ("rabbitmq", "emails")
    assert settings.connections["redis"].options == {"result_ttl": "60"}
    assert settings.connections["nats"].url_value == "nats://:t0ken@nats.internal:4222"
    assert "t0ken" not in repr(settings)
    clean_env.setenv("QUEUE_DRIVER", "redis")
    assert FileQueue().driver == "redis", "real environment variables beat the env file"


def test_provider_config_may_be_the_settings_class_itself(clean_env: pytest.MonkeyPatch) -> None:
    class QueueConfig(QueueSettings):
        driver: str = "memory"

    assert load_settings(QueueConfig).driver == "memory"


def test_a_connection_model_given_in_code_merges_with_env(clean_env: pytest.MonkeyPatch) -> None:
    from queue_manager import ConnectionSettings

    clean_env.setenv("QUEUE_CONNECTIONS__REDIS__URL", "redis://from-env:6379/0")
    settings = load_settings({"connections": {"redis": ConnectionSettings(driver="redis", queue="from-code")}})
    redis = settings.connections["redis"]
    assert (redis.queue, redis.url_value) == ("from-code", "redis://from-env:6379/0")


@pytest.mark.parametrize("name", ["QUEUE_CONNECTIONS", "QUEUE_CONNECTIONS__REDIS__OPTIONS", "QUEUE_DRIVERS"])
def test_a_variable_that_must_be_json_and_is_not_is_named_without_its_value(
    clean_env: pytest.MonkeyPatch, name: str
) -> None:
    clean_env.setenv(name, "redis://:hunter2@x")
    with pytest.raises(QueueConfigurationError, match=f"{name} must hold JSON") as caught:
        QueueSettings()
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "url"),
    [
        ("REDIS_URL", "redis://:p4ss#w0rd@127.0.0.1:6379/0"),
        ("REDIS_URL", "redis://user:p4ss?w0rd@127.0.0.1:6379/0"),
        ("RABBITMQ_URL", "amqp://guest:p4ss/w0rd@127.0.0.1:5672/"),
        ("NATS_URL", "nats://user:p4ss#w0rd@127.0.0.1:4222"),
        ("QUEUE_CONNECTIONS__JOBS__URL", "amqp://guest:p4ss#w0rd@rabbit:5672/"),
    ],
)
def test_a_url_whose_password_is_not_percent_encoded_fails_at_boot_without_echoing_it(
    clean_env: pytest.MonkeyPatch, variable: str, url: str
) -> None:
    clean_env.setenv(variable, url)
    if variable.startswith("QUEUE_CONNECTIONS__JOBS"):
        clean_env.setenv("QUEUE_CONNECTIONS__JOBS__DRIVER", "rabbitmq")
    with pytest.raises(QueueConfigurationError) as caught:
        QueueSettings()
    message = str(caught.value)
    assert "percent-encode" in message and "%23" in message, message
    assert "p4ss" not in message and "w0rd" not in message, message


def test_a_percent_encoded_password_with_those_characters_is_fine_and_masked(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_URL", "redis://:p4ss%23w0rd%2Fx%3F@127.0.0.1:6379/0")
    settings = QueueSettings()
    assert settings.connections["redis"].url_value == "redis://:p4ss%23w0rd%2Fx%3F@127.0.0.1:6379/0"
    assert "p4ss" not in repr(settings) and "w0rd" not in repr(settings)


@pytest.mark.parametrize("url", ["redis://", "redis:///0", "amqp://guest:guest@/", "nats://"])
def test_a_url_without_a_host_fails_at_boot(clean_env: pytest.MonkeyPatch, url: str) -> None:
    driver = {"redis": "redis", "amqp": "rabbitmq", "nats": "nats"}[url.split(":")[0]]
    with pytest.raises(QueueConfigurationError, match="no host") as caught:
        load_settings({"connections": {driver: {"url": url}}})
    assert "guest:guest" not in str(caught.value)


def test_a_unix_socket_url_needs_no_host(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings({"connections": {"redis": {"url": "unix:///run/redis.sock?db=2"}}})
    assert settings.connections["redis"].url_value == "unix:///run/redis.sock?db=2"


# -- several servers (issue #16) ------------------------------------------------------------------------------


def test_a_nats_url_list_is_one_setting_masked_whole(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("NATS_URL", "nats://u:s3cr3t@10.0.0.1:4222,nats://u:s3cr3t@10.0.0.2:4222")
    settings = QueueSettings()
    assert settings.connections["nats"].url_value == "nats://u:s3cr3t@10.0.0.1:4222,nats://u:s3cr3t@10.0.0.2:4222"
    assert "s3cr3t" not in repr(settings) and "10.0.0.2:4222" in repr(settings)


@pytest.mark.parametrize(
    ("driver", "url", "says"),
    [
        ("nats", "nats://u:s3cr3t@h1:4222,h2:4222", "whole URL"),
        ("nats", "nats://h1:4222,amqp://u:s3cr3t@h2:5672/", "must start with"),
        ("nats", "nats://h1:4222,ws://u:s3cr3t@h2:80", "cannot mix websocket"),
        ("rabbitmq", "amqp://u:s3cr3t@h1:5672/vh,", "empty"),
        ("redis", "redis://:s3cr3t@n1:7000,redis://:s3cr3t@n2:7001", "cluster=true"),
        ("redis_stream", "redis+sentinel://:s3cr3t@s1:26379/", "names its master"),
        ("redis", "redis+sentinel://:s3cr3t@s1:x/mymaster", "port is not a number"),
    ],
)
def test_a_bad_server_list_fails_at_boot_without_the_password(
    clean_env: pytest.MonkeyPatch, driver: str, url: str, says: str
) -> None:
    with pytest.raises(QueueConfigurationError, match=says) as caught:
        load_settings({"connections": {driver: {"url": url}}})
    assert "s3cr3t" not in str(caught.value)


def test_sentinel_and_cluster_urls_are_accepted(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings(
        {
            "connections": {
                "redis": {"url": "redis+sentinel://:pw@s1:26379,s2:26380/mymaster/1"},
                "redis_stream": {"url": "redis://n1:7000,redis://n2:7001", "options": {"cluster": True}},
            }
        }
    )
    assert settings.connections["redis"].url_value == "redis+sentinel://:pw@s1:26379,s2:26380/mymaster/1"
    from drivers.redis.target import target_of

    sentinel = target_of("redis+sentinel://:pw@s1:26379,s2:26380/mymaster/1")
    assert (sentinel.kind, sentinel.sentinels, sentinel.master_name, sentinel.db, sentinel.password) == (
        "sentinel",
        (("s1", 26379), ("s2", 26380)),
        "mymaster",
        1,
        "pw",
    )
    cluster = target_of("redis://n1:7000,redis://n2:7001", cluster=True)
    assert (cluster.kind, cluster.url, cluster.startup_nodes) == ("cluster", "redis://n1:7000", (("n2", 7001),))
    assert "pw" not in repr(settings) and "pw" not in repr(sentinel)


def test_sentinel_with_cluster_true_fails_at_boot(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_URL", "redis+sentinel://s1:26379/mymaster")
    clean_env.setenv("QUEUE_CONNECTIONS__REDIS__OPTIONS__CLUSTER", "true")
    with pytest.raises(QueueConfigurationError, match="no sentinels"):
        QueueSettings()


@pytest.mark.parametrize("url", ["redis+sentinel://:s3cr3t@s1:26379/mymaster", "redis://:s3cr3t@n1:7000"])
def test_the_failed_jobs_redis_store_refuses_a_sentinel_or_cluster_connection(
    clean_env: pytest.MonkeyPatch, url: str
) -> None:
    clean_env.setenv("REDIS_URL", url)
    clean_env.setenv("QUEUE_FAILED__DRIVER", "redis")
    if not url.startswith("redis+sentinel"):
        clean_env.setenv("QUEUE_CONNECTIONS__REDIS__OPTIONS__CLUSTER", "true")
    with pytest.raises(QueueConfigurationError, match="cannot keep failed jobs on connection 'redis'") as caught:
        QueueSettings()
    kind = "Sentinel" if url.startswith("redis+sentinel") else "Cluster"
    assert f"it is a Redis {kind} connection" in str(caught.value)
    assert "QUEUE_FAILED__DRIVER=database" in str(caught.value), "the fix is named"
    assert "s3cr3t" not in str(caught.value)


@pytest.mark.parametrize("replicas", ["0", "6", "three"])
def test_nats_replicas_out_of_range_fail_at_boot(clean_env: pytest.MonkeyPatch, replicas: str) -> None:
    from queue_manager import QueueManager

    clean_env.setenv("QUEUE_DRIVER", "memory")
    clean_env.setenv("QUEUE_CONNECTIONS__NATS__OPTIONS__REPLICAS", replicas)
    with pytest.raises(QueueConfigurationError, match="replicas"):
        QueueManager(QueueSettings())


def test_nats_replicas_in_range_are_accepted(clean_env: pytest.MonkeyPatch) -> None:
    from queue_manager import QueueManager

    clean_env.setenv("QUEUE_DRIVER", "memory")
    clean_env.setenv("QUEUE_CONNECTIONS__NATS__OPTIONS__REPLICAS", "3")
    assert QueueManager(QueueSettings()).settings.connections["nats"].options == {"replicas": "3"}


@pytest.mark.parametrize(
    ("driver", "url", "example"),
    [
        ("rabbitmq", "amqp://guest:S3cret@h1,h2/vh", "amqp://h1:5672,amqp://h2:5672"),
        ("rabbitmq", "amqp://guest:S3cret@h1:5672,h2:5672/vh", "amqp://h1:5672,amqp://h2:5672"),
        ("nats", "nats://u:S3cret@h1,h2", "nats://h1:4222,nats://h2:4222"),
    ],
)
def test_several_hosts_in_one_url_are_refused_at_boot_with_the_list_form(
    clean_env: pytest.MonkeyPatch, driver: str, url: str, example: str
) -> None:
    """``h1,h2`` would be taken for one host name and fail later with a DNS error."""
    with pytest.raises(QueueConfigurationError) as caught:
        load_settings({"driver": driver, "connections": {driver: {"url": url}}})
    message = str(caught.value)
    assert "one URL names several hosts" in message and example in message, message
    assert "S3cret" not in message


@pytest.mark.parametrize(("flag", "accepted"), [("true", True), ("yes", True), ("on", True), ("no", False)])
def test_the_cluster_flag_is_read_as_pydantic_reads_a_bool(
    clean_env: pytest.MonkeyPatch, flag: str, accepted: bool
) -> None:
    """A list of Redis URLs needs cluster on; the flag is read at boot without building the options model."""
    connection = {"url": "redis://h1:7000,redis://h2:7000", "options": {"cluster": flag}}
    if accepted:
        assert load_settings({"driver": "redis", "connections": {"redis": connection}}).driver == "redis"
    else:
        with pytest.raises(QueueConfigurationError, match="needs the option cluster=true"):
            load_settings({"driver": "redis", "connections": {"redis": connection}})


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "QUEUE_CONNECTIONS__REDIS__QUEU",
            "x",
            "(QUEUE_CONNECTIONS__REDIS__QUEU): no such setting. Did you mean 'queue'?",
        ),
        ("QUEUE_FAILED__URLL", "x", "(QUEUE_FAILED__URLL): no such setting. Did you mean 'url'?"),
        ("QUEUE_CONNECTIONS__NAST__QUEUE", "x", "QUEUE_CONNECTIONS__NAST__DRIVER=<redis|redis_stream|"),
        ("QUEUE_CONNECTIONS__NAST__QUEUE", "x", "Did you mean 'nats'?"),
        ("QUEUE_FAILED__DRIVER", "databse", "failed.driver (QUEUE_FAILED__DRIVER): Input should be 'database'"),
    ],
)
def test_a_setting_error_names_the_variable_to_fix_and_the_closest_valid_name(
    clean_env: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(QueueConfigurationError) as caught:
        load_settings()
    assert expected in str(caught.value), str(caught.value)


def test_a_misspelt_driver_option_gets_a_did_you_mean_under_the_settings_own_prefix(
    clean_env: pytest.MonkeyPatch,
) -> None:
    from pydantic_settings import SettingsConfigDict

    from queue_manager import QueueManager

    class MyQueue(QueueSettings):
        model_config = SettingsConfigDict(env_prefix="JOBS_", env_nested_delimiter="__")

    clean_env.setenv("JOBS_CONNECTIONS__REDIS__OPTIONS__RETRY_AFTR", "5")
    with pytest.raises(QueueConfigurationError) as caught:
        QueueManager(MyQueue())
    message = str(caught.value)
    assert "(JOBS_CONNECTIONS__REDIS__OPTIONS__RETRY_AFTR): no such setting. Did you mean 'retry_after'?" in message
    assert "Valid options:" in message


@pytest.mark.parametrize(
    ("variable", "driver", "url"),
    [
        ("RABBITMQ_URL", "rabbitmq", "amqp//guest:pw-s3cret@127.0.0.1:5672/"),
        ("NATS_URL", "nats", "127.0.0.1:4222"),
        ("REDIS_URL", "redis", "redis:/127.0.0.1:6379"),
    ],
)
def test_a_url_without_its_scheme_says_so_not_something_about_the_password(
    clean_env: pytest.MonkeyPatch, variable: str, driver: str, url: str
) -> None:
    clean_env.setenv(variable, url)
    clean_env.setenv("QUEUE_DRIVER", driver)
    with pytest.raises(QueueConfigurationError) as caught:
        load_settings()
    message = str(caught.value)
    assert "the URL has no scheme: it must start with" in message and variable in message, message
    assert "percent-encoded" not in message and "pw-s3cret" not in message
