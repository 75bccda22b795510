%% Distributed-Erlang counterpart of bench_net: two VMs (two `erl -sname`
%% nodes on one host), the message {tag, 12345, <<"sixteen-byte-str">>}.
%% bench_net starts both (with its own epmd) and compiles this file in
%% memory:
%%
%%   erl +S 1 -noshell -sname R -setcookie C -eval '... net_bench:recv().'
%%   erl +S 1 -noshell -sname S -setcookie C -eval \
%%       '... net_bench:client(flood|ping|setup, RecvNode, Count, Runs).'
%%
%% recv/0 prints "port <node>" and serves runs until killed.  client/4
%% prints one "result <wall-s> <CPU-s>" line per run: the VM's CPU time
%% (statistics(runtime)), timed from the receiver's `ready` to its `done`
%% (flood) or to the last echo (ping).  setup (issue 9) is Count
%% connection set-ups one after the other, the counterpart of net_aemp's:
%% net_kernel:connect_node (TCP connect and the distribution handshake,
%% authenticated by the cookie's challenge and response), a first message
%% to the receiver and its answer, erlang:disconnect_node; then the next,
%% with the same node name (as an Erlang node cannot change its own).
-module(net_bench).
-export([recv/0, client/4]).

-define(TEXT, <<"sixteen-byte-str">>).

recv() ->
    register(bench_recv, self()),
    io:format("port ~s~n", [node()]),
    serve().

serve() ->
    receive
        {hello, From, N, flood} ->
            From ! {ready, self()},
            count(N),
            From ! done;
        {hello, From, N, ping} ->
            From ! {ready, self()},
            echo(From, N);
        {knock, From} ->
            From ! welcome
    end,
    serve().

count(0) -> ok;
count(N) -> receive {tag, _, _} -> count(N - 1) end.

echo(_, 0) -> ok;
echo(From, N) -> receive {tag, _, _} = M -> From ! M, echo(From, N - 1) end.

client(setup, Node, Count, Runs) ->
    [setup_run(Node, Count) || _ <- lists:seq(1, Runs)],
    halt();
client(Mode, Node, Count, Runs) ->
    true = net_kernel:connect_node(Node),
    [run(Mode, Node, Count) || _ <- lists:seq(1, Runs)],
    halt().

run(Mode, Node, Count) ->
    {bench_recv, Node} ! {hello, self(), Count, Mode},
    Pid = receive {ready, P} -> P end,
    {Cpu0, _} = statistics(runtime),
    T0 = erlang:monotonic_time(),
    Bin = ?TEXT,
    case Mode of
        flood -> flood(Pid, Count, Bin), receive done -> ok end;
        ping -> ping(Pid, Count, Bin)
    end,
    T1 = erlang:monotonic_time(),
    {Cpu1, _} = statistics(runtime),
    Wall = erlang:convert_time_unit(T1 - T0, native, microsecond) / 1.0e6,
    io:format("result ~.6f ~.6f~n", [Wall, (Cpu1 - Cpu0) / 1000]).

flood(_, 0, _) -> ok;
flood(Pid, N, Bin) -> Pid ! {tag, 12345, Bin}, flood(Pid, N - 1, Bin).

ping(_, 0, _) -> ok;
ping(Pid, N, Bin) ->
    Pid ! {tag, 12345, Bin},
    receive {tag, 12345, B} when byte_size(B) =:= 16 -> ping(Pid, N - 1, Bin) end.

setup_run(Node, Count) ->
    setup(Node, 1), % the first connection of the run is not timed
    {Cpu0, _} = statistics(runtime),
    T0 = erlang:monotonic_time(),
    setup(Node, Count),
    T1 = erlang:monotonic_time(),
    {Cpu1, _} = statistics(runtime),
    Wall = erlang:convert_time_unit(T1 - T0, native, microsecond) / 1.0e6,
    io:format("result ~.6f ~.6f~n", [Wall, (Cpu1 - Cpu0) / 1000]).

setup(_, 0) -> ok;
setup(Node, N) ->
    true = net_kernel:connect_node(Node),
    {bench_recv, Node} ! {knock, self()},
    receive welcome -> ok end,
    true = erlang:disconnect_node(Node),
    setup(Node, N - 1).
