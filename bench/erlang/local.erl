%% Erlang/OTP counterpart of bench/bench_local.c: the same single-node
%% measurements, so that aemp's figures can be read as ratios to Erlang's.
%%
%% Run on one scheduler, as bench_local does (it compiles this file in
%% memory, so nothing is written next to it):
%%
%%   erl +S 1 -noshell -eval \
%%     '{ok,M,B}=compile:file("bench/erlang/local.erl",[binary,report]),
%%      code:load_binary(M,"local.erl",B), local:main([5, 1.0]), halt().'
%%
%% Output: one "RESULT <key> <median> runs: <r1> ... <rN>" line per figure
%% (rates in per second, memory in bytes), which bench_local parses.  Every
%% rate comes twice: per wall-clock second (<key>) and per CPU second of
%% the VM (<key>.cpu), as bench_local measures its own.
-module(local).
-export([main/0, main/1]).

-define(TEXT, <<"sixteen-byte-str">>).

main() -> main([5, 1.0]).

main([Runs, Scale]) ->
    Flood = round(4000000 * Scale),
    PingPong = round(2000000 * Scale),
    Churn = round(1000000 * Scale),
    Idle = 100000,
    io:format("erlang ~s, schedulers ~p~n",
              [erlang:system_info(otp_release),
               erlang:system_info(schedulers_online)]),
    {Cpu0, _} = statistics(runtime),
    {Wall0, _} = statistics(wall_clock),
    report_rate(delivery_per_s, repeat(Runs, fun() -> flood(Flood) end)),
    report_rate(pingpong_per_s,
                repeat(Runs, fun() -> pingpong(PingPong) end)),
    Ck = repeat(Runs, fun() -> spawn_kill(Churn) end),
    report_rate(spawn_kill_issued_per_s, [I || {I, _} <- Ck]),
    report_rate(spawn_kill_total_per_s, [T || {_, T} <- Ck]),
    %% As bench_local does: did other processes take the CPU away from us?
    {Cpu1, _} = statistics(runtime),
    {Wall1, _} = statistics(wall_clock),
    io:format("CPU share of the timed sections: ~w%~n",
              [round(100 * (Cpu1 - Cpu0) / max(1, Wall1 - Wall0))]),
    report(bytes_per_idle_process,
           repeat(Runs, fun() -> idle_memory(Idle) end)).

repeat(Runs, F) -> [F() || _ <- lists:seq(1, Runs)].

%% Runs of {PerWallSecond, PerCpuSecond}.
report_rate(Key, Runs) ->
    report(Key, [W || {W, _} <- Runs]),
    report(list_to_atom(atom_to_list(Key) ++ ".cpu"), [C || {_, C} <- Runs]).

report(Key, Runs) ->
    Sorted = lists:sort(Runs),
    Median = lists:nth((length(Sorted) + 1) div 2, Sorted),
    io:format("RESULT ~s ~.6g runs:~s~n",
              [Key, float(Median), [io_lib:format(" ~.6g", [float(R)])
                                    || R <- Runs]]).

%% A point in time, both ways: wall-clock ns and VM CPU time in ms.
now_ns() ->
    {Cpu, _} = statistics(runtime),
    {erlang:monotonic_time(nanosecond), Cpu}.

rate(N, {W0, C0}, {W1, C1}) ->
    {N / ((W1 - W0) / 1.0e9), N / (max(1, C1 - C0) / 1.0e3)}.

%% ---- local delivery: one sender floods one counting receiver ------------

flood(N) ->
    Parent = self(),
    Sink = spawn(fun() -> sink(N, Parent, none) end),
    T0 = now_ns(),
    spawn(fun() -> flood_send(Sink, N, ?TEXT) end),
    Last = receive {done, Sink, L} -> L after 120000 -> exit(flood_timeout) end,
    T1 = now_ns(),
    {tag, 12345, <<"sixteen-byte-str">>} = Last, % the last message arrived intact
    rate(N, T0, T1).

%% The tuple is built at run time from a variable, as aemp_snd builds its
%% message from arguments (a literal would be a shared constant).
flood_send(_Sink, 0, _Text) -> ok;
flood_send(Sink, K, Text) ->
    Sink ! {tag, 12345, Text},
    flood_send(Sink, K - 1, Text).

sink(0, Parent, Last) -> Parent ! {done, self(), Last};
sink(K, Parent, _) ->
    receive {tag, _, _} = M -> sink(K - 1, Parent, M) end.

%% ---- ping-pong: one message in flight between two processes -------------

pingpong(N) ->
    Parent = self(),
    Echo = spawn(fun echo/0),
    T0 = now_ns(),
    Ping = spawn(fun() -> ping(Echo, N div 2, Parent) end),
    Echo ! {peer, Ping},
    Last = receive {done, Ping, L} -> L after 120000 -> exit(pp_timeout) end,
    T1 = now_ns(),
    exit(Echo, kill),
    {tag, 12345, <<"sixteen-byte-str">>} = Last,
    rate(2 * (N div 2), T0, T1).

echo() -> receive {peer, P} -> echo(P) end.
echo(P) ->
    receive {tag, I, B} -> P ! {tag, I, B}, echo(P) end.

%% Each round trip is two deliveries (to Echo and back).
ping(Echo, Rounds, Parent) ->
    Echo ! {tag, 12345, ?TEXT},
    ping_loop(Echo, Rounds, Parent).

ping_loop(_Echo, 1, Parent) ->
    receive {tag, _, _} = M -> Parent ! {done, self(), M} end;
ping_loop(Echo, K, Parent) ->
    receive {tag, I, B} -> Echo ! {tag, I, B}, ping_loop(Echo, K - 1, Parent) end.

%% ---- spawn + kill, then until the processes are really gone -------------

spawn_kill(N) ->
    Base = erlang:system_info(process_count),
    T0 = now_ns(),
    spawn_kill_loop(N),
    T1 = now_ns(),
    wait_count(Base),
    T2 = now_ns(),
    {rate(N, T0, T1), rate(N, T0, T2)}.

spawn_kill_loop(0) -> ok;
spawn_kill_loop(K) ->
    P = spawn(fun idle/0),
    exit(P, kill),
    spawn_kill_loop(K - 1).

idle() -> receive stop -> ok end.

%% Exit signals are asynchronous: yield until every victim has exited.
wait_count(Base) ->
    case erlang:system_info(process_count) > Base of
        true -> erlang:yield(), wait_count(Base);
        false -> ok
    end.

%% ---- memory of idle processes --------------------------------------------

%% The pids go to an ETS table, and the loop is a plain recursion, so that
%% no list grows this process's heap, which erlang:memory(processes) would
%% count as theirs.
idle_memory(N) ->
    Tab = ets:new(pids, [set, private]),
    Base = erlang:system_info(process_count),
    garbage_collect(),
    M0 = erlang:memory(processes),
    spawn_idle(Tab, N),
    receive after 200 -> ok end, % let every process start and go idle
    M1 = erlang:memory(processes),
    ets:foldl(fun({_, P}, _) -> exit(P, kill) end, ok, Tab),
    ets:delete(Tab),
    wait_count(Base),
    (M1 - M0) / N.

spawn_idle(_Tab, 0) -> ok;
spawn_idle(Tab, K) ->
    ets:insert(Tab, {K, spawn(fun idle/0)}),
    spawn_idle(Tab, K - 1).
